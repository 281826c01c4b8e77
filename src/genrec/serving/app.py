"""The HTTP service: a thin FastAPI layer over :class:`genrec.api.Recommender`.

DESIGN.md, "Serving": the same ``recommend()`` as Python and the command line, with
request batching (:mod:`.batching`), input validation (422 naming the field), health and
metadata endpoints, and catalogue updates that make a new title recommendable at once.
This module is the app factory and its endpoints, nothing else: the request and response
bodies are :mod:`.schemas`, the body checks and the token :mod:`.middleware`, and how
errors are worded and mapped to statuses :mod:`.http_errors`. What an endpoint does is
the library's (resolving titles, decoding, changing and persisting the catalogue).

Endpoints::

    POST   /recommend         {"history": [...], "k": 10} -> {"items": [...], "unknown": [...]}
                              (+ "candidates": [...]: the top k of those items only)
    POST   /recommend/batch   {"histories": [[...], ...], "k": 10[, "candidates": [[...], ...]]} -> {"results": [...]}
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
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Body, Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..api import RecommendedItem, Recommender
from ..errors import UnknownItemError
from . import http_errors
from .batching import Batcher
from .http_errors import responses
from .middleware import MAX_BODY_BYTES, BodyLimit, token_guard
from .schemas import (
    MAX_ADD,
    MAX_BATCH_HISTORIES,
    MAX_CANDIDATES,
    MAX_HISTORY,
    MAX_K,
    AddResponse,
    BatchRequest,
    BatchResponse,
    Health,
    Info,
    ItemOut,
    NewItem,
    RecommendRequest,
    RecommendResponse,
    RemoveResponse,
    ScoreRequest,
    ScoreResponse,
)

__all__ = ["MAX_ADD", "MAX_BATCH_HISTORIES", "MAX_BODY_BYTES", "MAX_CANDIDATES", "MAX_HISTORY", "MAX_K", "create_app"]


def _scored(items: list[RecommendedItem]) -> list[dict]:
    return [{"item_id": i.item_id, "title": i.title, "score": i.score if math.isfinite(i.score) else None} for i in items]


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
    http_errors.install(app)

    # ------------------------------------------------------------------ recommending

    async def _recommend(histories, k: int, decode, exclude_seen: bool, on_unknown: str, candidates=None) -> list[dict]:
        """`candidates`: None (search the catalogue), or one candidate list per history."""
        # the server's settings in the requested mode
        decoding = rec.check_request(k, decode, candidates=candidates is not None)
        resolved = await run_in_threadpool(rec.resolve_many, histories, on_unknown)
        if candidates is None:
            futures = batcher.submit([r.indices for r in resolved], ("rank", k, decoding, exclude_seen))
        else:
            cands = [await run_in_threadpool(rec.resolve_candidates, c) for c in candidates]
            futures = batcher.submit([(r.indices, c) for r, c in zip(resolved, cands, strict=True)],
                                     ("candidates", k, decoding, exclude_seen))
        ranked = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        return [{"items": _scored(items), "unknown": r.unknown, "shortfall": getattr(items, "shortfall", None)}
                for items, r in zip(ranked, resolved, strict=True)]

    @app.post("/recommend", response_model=RecommendResponse, responses=responses(400, 413, 422, 503))
    async def recommend(req: RecommendRequest):
        """The top-k items for one history of titles or item ids (oldest first); with
        `candidates`, the top k of those items (re-ranking)."""
        candidates = None if req.candidates is None else [req.candidates]
        return (await _recommend([req.history], req.k, req.decode, req.exclude_seen, req.on_unknown, candidates))[0]

    @app.post("/score", response_model=ScoreResponse, responses=responses(400, 413, 422, 503))
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

    @app.post("/recommend/batch", response_model=BatchResponse, responses=responses(400, 413, 422, 503))
    async def recommend_batch(req: BatchRequest):
        """The top-k items for each of several histories (one result per history, in order);
        with `candidates`, one list per history, the top k of each history's own list."""
        return {"results": await _recommend(req.histories, req.k, req.decode, req.exclude_seen, req.on_unknown, req.candidates)}

    # ------------------------------------------------------------------ catalogue

    @app.get("/items/{item_id:path}", response_model=ItemOut, responses=responses(404))
    def get_item(item_id: str):
        """An item of the catalogue (404 if it is unknown or was removed)."""
        try:
            item = rec.item(item_id)
        except UnknownItemError as e:
            return http_errors.unknown_item(404, e)
        return {"item_id": item.item_id, "title": item.title}

    # the schema declares the bearer scheme only where it is enforced
    guard = {"dependencies": [Depends(token_guard(token))]} if token is not None else {}
    denied = (401, 403) if token is not None else ()

    @app.post("/items", status_code=201, response_model=AddResponse, **guard,
              responses=responses(400, *denied, 409, 413, 422, 500))
    def add_items(items: Annotated[list[NewItem], Body(min_length=1, max_length=MAX_ADD)]):
        """Add items: their titles are recommendable at once, without retraining (persisted next to the run)."""
        added = rec.add_items([{"item_id": i.item_id, "title": i.title} for i in items])
        return {"added": [{"item_id": a.item_id, "title": a.title} for a in added], "catalogue_size": len(rec)}

    @app.delete("/items/{item_id:path}", response_model=RemoveResponse, **guard,
                responses=responses(*denied, 404, 500))
    def remove_item(item_id: str):
        """Stop recommending an item (it may still appear in histories; persisted next to the run)."""
        try:
            item = rec.item(item_id)
            rec.remove_items([item_id])
        except UnknownItemError as e:
            return http_errors.unknown_item(404, e)
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
