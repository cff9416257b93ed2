"""What every control-API handler shares: JSON answers, validated bodies, `{"error": ...}` refusals."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from sandbox.errors import SandboxError

M = TypeVar("M", bound=BaseModel)


class ControlError(SandboxError):
    """A control call refused; answered as `{"error": message}` with `status`."""


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise ControlError(400, f"invalid {model.__name__}: {problems}") from exc
