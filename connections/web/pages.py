"""Human-readable result pages (escaped: messages may echo request input)."""

from __future__ import annotations

import html
from pathlib import Path
from string import Template

from starlette.responses import HTMLResponse

_RESULT = Template((Path(__file__).parent / "templates" / "result.html").read_text())


def result_page(title: str, message: str, *, ok: bool, status_code: int = 200) -> HTMLResponse:
    body = _RESULT.substitute(title=html.escape(title), message=html.escape(message), kind="ok" if ok else "error")
    return HTMLResponse(body, status_code=status_code)
