"""The HTTP service: a thin FastAPI layer over :class:`genrec.api.Recommender`.

DESIGN.md, "Serving": the same ``recommend()`` as Python and the command line, with
request batching (:mod:`.batching`), input validation (422 naming the field), health and
metadata endpoints, and catalogue updates that make a new title recommendable at once.

Endpoints::

    POST   /recommend         {"history": [...], "k": 10} -> {"items": [...], "unknown": [...]}
                              (+ "candidates": [...]: the top k of those items only)
    POST   /recommend/batch   {"histories": [[...], ...], "k": 10} -> {"results": [...]}
    POST   /score             {"history": [...], "candidates": [...]} -> {"items": [...], "unknown": [...]}
    POST   /items             [{"item_id", "title"}, ...]      (token, if set)
    DELETE /items/{item_id}                                      (token, if set)
    GET    /items/{item_id}
    GET    /health, GET /info, GET /openapi.json, GET /docs

Errors are JSON ``{"detail": ..., "fix": ...}``: 400 a body that is not UTF-8, not JSON,
or nested too deeply to parse, 401 missing and 403 wrong token, 404 unknown item id,
409 duplicate id or title on add, 413 body over the limit, 422 invalid request (the
field is named; bodies are strict, so ``"k": "3"`` or ``true`` is no number; unknown
history entries come with close titles), 500 when a catalogue change cannot be saved
(nothing changes then), 503 queue full. Catalogue changes run under the recommender's
lock and are persisted before they take effect, so a concurrent request never sees
half a change.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import Body, Depends, FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..api import MAX_ID_LENGTH, MAX_TITLE_LENGTH, DecodeMode, DuplicateItemError, RecommendedItem, Recommender
from ..data.live_catalogue import PersistError
from ..errors import GenrecError, UnknownItemError
from .batching import Batcher, QueueFullError

#: request limits (also in the OpenAPI schema)
MAX_K = 100
MAX_HISTORY = 200
MAX_BATCH_HISTORIES = 64
MAX_ADD = 1000
MAX_CANDIDATES = 1000
MAX_BODY_BYTES = 1 << 20



def _int_to_str(v):
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


# a title or item id; a JSON integer is taken as an item id (one type, so an error names
# "history.0", not each member of a union)
Entry = Annotated[
    str,
    BeforeValidator(_int_to_str),
    StringConstraints(min_length=1, max_length=MAX_TITLE_LENGTH),
    WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_TITLE_LENGTH}, {"type": "integer"}]}),
]
History = Annotated[list[Entry], Field(min_length=1, max_length=MAX_HISTORY, description="titles or item ids, oldest first")]
Candidates = Annotated[list[Entry], Field(min_length=1, max_length=MAX_CANDIDATES)]


class _Strict(BaseModel):
    # strict: "k": true or "k": "3" is a client's bug, never a number to guess at
    model_config = ConfigDict(extra="forbid", strict=True)


class RecommendRequest(_Strict):
    history: History
    k: int = Field(10, ge=1, le=MAX_K, description="items to return (at most the beam width for beam/free decoding)")
    decode: DecodeMode | None = Field(None, description="decoding mode (default: the server's)")
    exclude_seen: bool = Field(True, description="never recommend an item of the history")
    on_unknown: Literal["error", "skip"] = Field(
        "error", description="an entry that is no title or item id: fail with 422 (error), or leave it out and list it in `unknown` (skip)"
    )
    candidates: Candidates | None = Field(
        None, description="rank only these items (titles or item ids; re-ranking): the top k of them by score, no search, so "
                          "k may exceed the beam width; an unknown or removed candidate is a 422 whatever on_unknown says"
    )


class ScoreRequest(_Strict):
    history: History
    candidates: Candidates = Field(description="titles or item ids to score; an unknown or removed one is a 422")
    decode: DecodeMode | None = Field(None, description="decoding mode (default: the server's; an assistant is fused in beam mode only)")
    on_unknown: Literal["error", "skip"] = Field("error", description="for history entries only (as in /recommend)")


class BatchRequest(_Strict):
    histories: list[History] = Field(min_length=1, max_length=MAX_BATCH_HISTORIES)
    k: int = Field(10, ge=1, le=MAX_K)
    decode: DecodeMode | None = None
    exclude_seen: bool = True
    on_unknown: Literal["error", "skip"] = "error"


class NewItem(_Strict):
    item_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    title: str = Field(min_length=1, max_length=MAX_TITLE_LENGTH)


class ItemOut(BaseModel):
    item_id: str
    title: str


class ScoredItem(ItemOut):
    score: float | None = Field(description="the model's log-probability of the title (null if not finite)")


class RecommendResponse(BaseModel):
    items: list[ScoredItem]
    unknown: list[str] = Field(description="history entries left out as unknown (on_unknown=skip)")
    shortfall: str | None = Field(None, description="why fewer than k items came back (exact decoding's budget ran out, "
                                                    "free decoding wrote text that is no title, ...); null when k did")


class ScoreResponse(BaseModel):
    items: list[ScoredItem] = Field(description="every candidate with its score (higher is better), in the order given")
    unknown: list[str] = Field(description="history entries left out as unknown (on_unknown=skip)")


class BatchResponse(BaseModel):
    results: list[RecommendResponse]


class AddResponse(BaseModel):
    added: list[ItemOut]
    catalogue_size: int


class RemoveResponse(BaseModel):
    removed: ItemOut
    catalogue_size: int


class Health(BaseModel):
    status: Literal["ok"]
    queued: int = Field(description="requests waiting for the decoding worker")
    catalogue_size: int
    batches: int = Field(description="decoding calls since start")
    decoded: int = Field(description="histories decoded since start (decoded / batches = mean batch size)")


class Info(BaseModel):
    run: str
    backbone: str
    adapter: str
    adapter_step: int | None
    item_repr: str
    dataset: dict
    catalogue_size: int
    items_added: int
    items_removed: int
    changes_file: str | None
    decode: str
    beams: int
    decoding: dict = Field(description="the default decoding settings (mode, beams, batch size, scoring, assistant)")
    max_history: int
    genrec_version: str
    max_batch: int
    max_wait_ms: float
    max_k: int
    token_required: bool


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ErrorBody(BaseModel):
    detail: str
    fix: str | None = None
    errors: list[FieldError] | None = None
    unknown: list[str] | None = None
    suggestions: dict[str, list[str]] | None = None


_MEANING = {
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


def _responses(*codes: int) -> dict:
    return {c: {"model": ErrorBody, "description": _MEANING[c]} for c in codes}


def _bad_body(problem: str, kind: str, fix: str) -> JSONResponse:
    """400 in the shape of every other error; `errors` names the body as a 422 names a field."""
    return JSONResponse({"detail": problem, "fix": fix, "errors": [{"field": "body", "message": problem, "type": kind}]},
                        status_code=400)


def _error(code: int, e: GenrecError, **extra) -> JSONResponse:
    body = {"detail": e.problem, "fix": e.fix, **extra}
    return JSONResponse(body, status_code=code)


def _scored(items: list[RecommendedItem]) -> list[dict]:
    return [{"item_id": i.item_id, "title": i.title, "score": i.score if math.isfinite(i.score) else None} for i in items]


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
            response = _bad_body(
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


def create_app(
    recommender: Recommender,
    token: str | None = None,
    max_batch: int = 16,
    max_wait_ms: float = 5.0,
    max_queue: int = 1024,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The FastAPI application serving `recommender`.

    ``token``: if set, POST/DELETE /items need ``Authorization: Bearer <token>``.
    ``max_batch`` / ``max_wait_ms``: the largest decoding batch and how long the worker
    waits to fill one (``max_batch=1`` decodes one request at a time). ``max_queue``:
    waiting requests beyond this get 503. ``max_body_bytes``: larger bodies get 413.
    """
    rec = recommender

    def run_batch(jobs: list, kind: str, *key):
        """One decoding call for jobs of one kind: catalogue histories, or (history, candidates) pairs."""
        if kind == "rank":
            return rec.rank(jobs, *key)
        histories, candidates = [h for h, _ in jobs], [c for _, c in jobs]
        if kind == "candidates":
            return rec.rank(histories, *key, candidates=candidates)
        return rec.score_indices(histories, candidates, *key)

    batcher = Batcher(run_batch, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.open()
        yield
        await run_in_threadpool(batcher.close)

    app = FastAPI(
        title="genrec",
        version=__version__,
        description="GenRec: a fine-tuned language model writes the title of a user's next item.",
        lifespan=lifespan,
    )
    app.state.recommender, app.state.batcher = rec, batcher
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
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

    # ------------------------------------------------------------------ errors

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":  # FastAPI's json.JSONDecodeError; loc is ("body", character offset)
                where = e.get("loc", ("body", "?"))[-1]
                reason = (e.get("ctx") or {}).get("error", "")
                return _bad_body(f"the request body is not valid JSON: {reason} at character {where}", "json_invalid",
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
            return _bad_body("the request body is nested too deeply to parse (arrays or objects inside each other, "
                             "beyond Python's recursion limit)", "body_too_deep",
                             "send the flat request format /docs shows: a history is a list of strings")
        return _bad_body(f"the request body cannot be parsed: {type(exc.__cause__).__name__}: {exc.__cause__}",
                         "body_invalid", "send one JSON value encoded as UTF-8, as /docs shows it")

    @app.exception_handler(UnknownItemError)
    async def unknown(request: Request, exc: UnknownItemError):
        return _error(422, exc, unknown=exc.unknown, suggestions=exc.suggestions)

    @app.exception_handler(DuplicateItemError)
    async def duplicate(request: Request, exc: DuplicateItemError):
        return _error(409, exc)

    @app.exception_handler(QueueFullError)
    async def busy(request: Request, exc: QueueFullError):
        response = _error(503, exc)
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(PersistError)
    async def not_saved(request: Request, exc: PersistError):
        return _error(500, exc)

    @app.exception_handler(GenrecError)
    async def bad_request(request: Request, exc: GenrecError):
        return _error(422, exc)

    # ------------------------------------------------------------------ recommending

    async def _recommend(histories, k: int, decode, exclude_seen: bool, on_unknown: str, candidates=None) -> list[dict]:
        # the server's settings in the requested mode
        decoding = rec.check_request(k, decode, candidates=candidates is not None)
        resolved = await run_in_threadpool(rec.resolve_many, histories, on_unknown)
        if candidates is None:
            futures = batcher.submit([r.indices for r in resolved], ("rank", k, decoding, exclude_seen))
        else:
            cands = await run_in_threadpool(rec.resolve_candidates, candidates)
            futures = batcher.submit([(r.indices, cands) for r in resolved], ("candidates", k, decoding, exclude_seen))
        ranked = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        return [{"items": _scored(items), "unknown": r.unknown, "shortfall": getattr(items, "shortfall", None)}
                for items, r in zip(ranked, resolved, strict=True)]

    @app.post("/recommend", response_model=RecommendResponse, responses=_responses(400, 413, 422, 503))
    async def recommend(req: RecommendRequest):
        """The top-k items for one history of titles or item ids (oldest first); with
        `candidates`, the top k of those items (re-ranking)."""
        return (await _recommend([req.history], req.k, req.decode, req.exclude_seen, req.on_unknown, req.candidates))[0]

    @app.post("/score", response_model=ScoreResponse, responses=_responses(400, 413, 422, 503))
    async def score(req: ScoreRequest):
        """Each candidate's score after one history (titles or item ids), in the order given:
        the model's log-probability of writing it (with the server's assistant in beam mode).
        Sorting by it gives what /recommend with `candidates` returns (which leaves out seen items)."""
        decoding = rec.decoding_for(req.decode)
        resolved = await run_in_threadpool(rec.resolve, req.history, req.on_unknown)
        cands = await run_in_threadpool(rec.resolve_candidates, req.candidates)
        (future,) = batcher.submit([(resolved.indices, cands)], ("score", decoding))
        items = await asyncio.wrap_future(future)
        return {"items": _scored(items), "unknown": resolved.unknown}

    @app.post("/recommend/batch", response_model=BatchResponse, responses=_responses(400, 413, 422, 503))
    async def recommend_batch(req: BatchRequest):
        """The top-k items for each of several histories (one result per history, in order)."""
        return {"results": await _recommend(req.histories, req.k, req.decode, req.exclude_seen, req.on_unknown)}

    # ------------------------------------------------------------------ catalogue

    @app.get("/items/{item_id:path}", response_model=ItemOut, responses=_responses(404))
    def get_item(item_id: str):
        """An item of the catalogue (404 if it is unknown or was removed)."""
        try:
            item = rec.item(item_id)
        except UnknownItemError as e:
            return _error(404, e, unknown=e.unknown, suggestions=e.suggestions)
        return {"item_id": item.item_id, "title": item.title}

    # the schema declares the bearer scheme only where it is enforced
    guard = {"dependencies": [Depends(require_token)]} if token is not None else {}
    denied = (401, 403) if token is not None else ()

    @app.post("/items", status_code=201, response_model=AddResponse, **guard,
              responses=_responses(400, *denied, 409, 413, 422, 500))
    def add_items(items: Annotated[list[NewItem], Body(min_length=1, max_length=MAX_ADD)]):
        """Add items: their titles are recommendable at once, without retraining (persisted next to the run)."""
        added = rec.add_items([{"item_id": i.item_id, "title": i.title} for i in items])
        return {"added": [{"item_id": a.item_id, "title": a.title} for a in added], "catalogue_size": len(rec)}

    @app.delete("/items/{item_id:path}", response_model=RemoveResponse, **guard,
                responses=_responses(*denied, 404, 500))
    def remove_item(item_id: str):
        """Stop recommending an item (it may still appear in histories; persisted next to the run)."""
        try:
            item = rec.item(item_id)
            rec.remove_items([item_id])
        except UnknownItemError as e:
            return _error(404, e, unknown=e.unknown, suggestions=e.suggestions)
        return {"removed": {"item_id": item.item_id, "title": item.title}, "catalogue_size": len(rec)}

    # ------------------------------------------------------------------ metadata

    @app.get("/health", response_model=Health)
    async def health():
        """Liveness: the model is loaded; how many requests wait for decoding."""
        return {"status": "ok", "queued": batcher.queued, "catalogue_size": len(rec),
                "batches": batcher.batches, "decoded": batcher.requests}

    @app.get("/info", response_model=Info)
    def info():
        """Backbone, adapter, dataset, catalogue size, decoding mode and server settings."""
        return {**rec.info(), "max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_k": MAX_K,
                "token_required": token is not None}

    return app
