"""What binds a connect flow to one browser, and the headers every connect page carries.

The cookie is HttpOnly (page scripts never see it), SameSite=Lax (sent on the provider's
top-level redirect back to /oauth/callback, never on a cross-site POST) and Secure with a
`__Host-` name when the public URL is https (no subdomain can plant or read it). One cookie per
connect session, named after it, so two flows in two tabs do not disturb each other.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE_PREFIX = "screensync_connect_"
PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",  # the link's session token never leaves in a Referer
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class BrowserBinding:
    """Cookie and Origin rules for one app, from its configured public URL (if any)."""

    def __init__(self, public_url: str | None) -> None:
        self.public_url = public_url

    def secure(self, request: Request) -> bool:
        scheme = urlsplit(self.public_url).scheme if self.public_url else request.url.scheme
        return scheme == "https"

    def cookie_name(self, request: Request, session_id: str) -> str:
        return f"{'__Host-' if self.secure(request) else ''}{COOKIE_PREFIX}{session_id}"

    def secret(self, request: Request, session_id: str) -> str | None:
        return request.cookies.get(self.cookie_name(request, session_id))

    def set(self, response: Response, request: Request, session_id: str, value: str, max_age: int) -> None:
        response.set_cookie(
            self.cookie_name(request, session_id),
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure(request),
        )

    def clear(self, response: Response, request: Request, session_id: str) -> None:
        response.delete_cookie(
            self.cookie_name(request, session_id), path="/", httponly=True, samesite="lax", secure=self.secure(request)
        )

    def origin_allowed(self, request: Request) -> bool:
        """A browser's POST names its page's origin; it must be ours (absent: not a browser, cookie rules)."""
        origin = request.headers.get("origin")
        if origin is None:
            return True
        expected = origin_of(self.public_url) if self.public_url else origin_of(str(request.url))
        return origin.lower() == expected

    def post_url(self, integration: str) -> str:
        """Where the widget page posts its token: from the public URL, never from the Host header."""
        return f"{self.public_url or ''}/connect/{integration}/widget-token"
