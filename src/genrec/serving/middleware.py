"""What the HTTP service checks before an endpoint runs: the body (size, UTF-8) and the token.

:class:`BodyLimit` is ASGI middleware around the whole app: a body over ``max_bytes``
gets 413 whether or not Content-Length is sent (a streamed body is counted as it
arrives), and a body that is not UTF-8 gets 400 in the service's error shape
(:mod:`.http_errors`). :func:`token_guard` is the dependency that guards catalogue
changes with a bearer token (401 without one, 403 for a wrong one, compared in constant
time); reading needs none.
"""

from __future__ import annotations

import secrets

from fastapi import Depends, HTTPException, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .http_errors import bad_body

#: the default limit on a request body
MAX_BODY_BYTES = 1 << 20


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, whether or not Content-Length is
    sent, and bodies that are not UTF-8 with 400.

    UTF-8 is checked here, on the raw bytes, because FastAPI's parser (``json.loads`` on
    bytes) also takes UTF-16 and UTF-32, and answers other bytes with a bare 400 that no
    handler of ours can tell apart; RFC 8259 allows UTF-8 only.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(scope, send, length.decode(errors="replace"))
        messages, size = [], 0
        while True:  # buffer the body (small by construction) so an over-long stream is caught too
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._refuse(scope, send, f"more than {size}")
            if not message.get("more_body", False):
                break

        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            response = bad_body(
                f"the request body is not UTF-8 (byte 0x{body[e.start]:02x} at offset {e.start})",
                "body_not_utf8",
                "send the JSON encoded as UTF-8 (RFC 8259), e.g. json.dumps(body).encode('utf-8'); see /docs",
            )
            return await response(scope, _no_receive, send)

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, scope, send, size: str) -> None:
        response = JSONResponse(
            {"detail": f"the request body is {size} bytes; the limit is {self.max_bytes}",
             "fix": "send fewer histories or items per request"},
            status_code=413,
        )
        await response(scope, _no_receive, send)


async def _no_receive():  # the refused body is never read
    return {"type": "http.disconnect"}


def token_guard(token: str | None):
    """The dependency that lets a request through only with ``Authorization: Bearer
    <token>`` (anyone, if `token` is None)."""
    bearer = HTTPBearer(auto_error=False, description="the server's API token (only catalogue changes need it)")

    # a default, not Annotated[...]: the annotation is a string here and `bearer` is local
    def require_token(cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if token is None:
            return
        if cred is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "this endpoint needs an API token",
                                headers={"WWW-Authenticate": "Bearer"})
        if not secrets.compare_digest(cred.credentials.encode(), token.encode()):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the API token is wrong")

    return require_token
