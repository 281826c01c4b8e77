"""How the HTTP service answers what goes wrong: one JSON error shape for every status.

Every error is ``{"detail": ..., "fix": ...}`` (:class:`~.schemas.ErrorBody`), plus
``errors`` (the fields a 422 or 400 names), or ``unknown`` and ``suggestions`` (history
entries that are no title or item id). The library's exceptions map to statuses here,
once for every endpoint: UnknownItemError 422 (404 where an endpoint looks up one item
id, :mod:`.app`), DuplicateItemError 409, PersistError 500 (the change was not saved, so
nothing changed), QueueFullError 503 with ``Retry-After``, any other GenrecError 422.
FastAPI's own validation errors become 422 naming each field, and a body that cannot be
parsed at all 400, in the same shape (``errors`` names the body as a 422 names a field):
FastAPI would answer it with a bare 400 and no fix. ``responses(...)`` documents these
statuses in the OpenAPI schema with their meaning.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..data.live_catalogue import DuplicateItemError, PersistError
from ..errors import GenrecError, UnknownItemError
from .batching import QueueFullError
from .schemas import ErrorBody

MEANING = {
    400: "the body is not UTF-8, not JSON, or nested too deeply to parse",
    401: "no API token",
    403: "the API token is wrong",
    404: "no such item",
    409: "the item id or title is already in the catalogue",
    413: "the body is over the size limit",
    422: "a field is invalid (named in `errors`), or a history entry is unknown",
    500: "the catalogue change could not be saved; nothing changed",
    503: "the queue is full; retry after `Retry-After` seconds",
}


def responses(*codes: int) -> dict:
    """The OpenAPI ``responses`` of an endpoint that may answer `codes`."""
    return {c: {"model": ErrorBody, "description": MEANING[c]} for c in codes}


def bad_body(problem: str, kind: str, fix: str) -> JSONResponse:
    """400 in the shape of every other error; `errors` names the body as a 422 names a field."""
    return JSONResponse({"detail": problem, "fix": fix, "errors": [{"field": "body", "message": problem, "type": kind}]},
                        status_code=400)


def error(code: int, e: GenrecError, **extra) -> JSONResponse:
    body = {"detail": e.problem, "fix": e.fix, **extra}
    return JSONResponse(body, status_code=code)


def unknown_item(code: int, e: UnknownItemError) -> JSONResponse:
    """An unknown history entry (422) or item id (404), with close titles or ids."""
    return error(code, e, unknown=e.unknown, suggestions=e.suggestions)


def install(app: FastAPI) -> None:
    """Register the handlers that give every error of `app` the one shape."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":  # FastAPI's json.JSONDecodeError; loc is ("body", character offset)
                where = e.get("loc", ("body", "?"))[-1]
                reason = (e.get("ctx") or {}).get("error", "")
                return bad_body(f"the request body is not valid JSON: {reason} at character {where}", "json_invalid",
                                "send one complete JSON value as /docs shows it (was the body cut short?)")
            loc = [str(p) for p in e.get("loc", ()) if p != "body"]
            errors.append({"field": ".".join(loc) or "body", "message": e.get("msg", ""), "type": e.get("type", "")})
        detail = "; ".join(f"{x['field']}: {x['message']}" for x in errors) or "invalid request"
        return JSONResponse({"detail": detail, "fix": "see /docs for the request format", "errors": errors}, status_code=422)

    # FastAPI raises Starlette's HTTPException (not its own subclass, which a handler for
    # fastapi.HTTPException would need) when parsing a body fails for another reason than
    # a JSONDecodeError; with UTF-8 checked by BodyLimit that is json.loads' RecursionError
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code != 400 or exc.__cause__ is None:  # 401/403 (ours), 404/405 (routing): as FastAPI words them
            return await http_exception_handler(request, exc)
        if isinstance(exc.__cause__, RecursionError):
            return bad_body("the request body is nested too deeply to parse (arrays or objects inside each other, "
                            "beyond Python's recursion limit)", "body_too_deep",
                            "send the flat request format /docs shows: a history is a list of strings")
        return bad_body(f"the request body cannot be parsed: {type(exc.__cause__).__name__}: {exc.__cause__}",
                        "body_invalid", "send one JSON value encoded as UTF-8, as /docs shows it")

    @app.exception_handler(UnknownItemError)
    async def unknown(request: Request, exc: UnknownItemError):
        return unknown_item(422, exc)

    @app.exception_handler(QueueFullError)
    async def busy(request: Request, exc: QueueFullError):
        response = error(503, exc)
        response.headers["Retry-After"] = "1"
        return response

    # the rest answer with their status only (Starlette picks the handler of the closest
    # class, so GenrecError is the fallback for all the others)
    for kind, code in ((DuplicateItemError, 409), (PersistError, 500), (GenrecError, 422)):
        app.add_exception_handler(kind, _answer_with(code))


def _answer_with(code: int):
    async def handler(request: Request, exc: GenrecError) -> JSONResponse:
        return error(code, exc)

    return handler
