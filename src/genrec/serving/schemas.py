"""The HTTP service's request and response bodies (pydantic models), and its request limits.

They are the OpenAPI schema ``/openapi.json`` and ``/docs`` publish, and what FastAPI
validates a request against before an endpoint of :mod:`.app` sees it: a 422 names the
field (:mod:`.http_errors`). Request bodies are strict (``"k": "3"`` or ``true`` is no
number, an unknown key is refused): a client's bug is reported, never guessed at. The
error body every status shares is :class:`ErrorBody`.

Nothing here imports FastAPI: pydantic is a dependency of genrec itself.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from ..api import MAX_ID_LENGTH, MAX_TITLE_LENGTH, DecodeMode

#: request limits (also in the OpenAPI schema)
MAX_K = 100
MAX_HISTORY = 200
MAX_BATCH_HISTORIES = 64
MAX_ADD = 1000
MAX_CANDIDATES = 1000


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
    k: int = Field(10, ge=1, le=MAX_K, description="items to return (at most the beam width for beam/free decoding, the rerank depth for rerank)")
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
    decode: DecodeMode | None = Field(None, description="decoding mode (default: the server's; an assistant is used in beam and rerank modes only)")
    on_unknown: Literal["error", "skip"] = Field("error", description="for history entries only (as in /recommend)")


class BatchRequest(_Strict):
    histories: list[History] = Field(min_length=1, max_length=MAX_BATCH_HISTORIES)
    k: int = Field(10, ge=1, le=MAX_K)
    decode: DecodeMode | None = None
    exclude_seen: bool = True
    on_unknown: Literal["error", "skip"] = "error"
    candidates: list[Candidates] | None = Field(
        None, description="one candidate list per history, in the order of `histories` (re-ranking, as `candidates` of "
                          "/recommend): each history's top k of its own list, no search"
    )

    @field_validator("candidates")
    @classmethod
    def _one_list_per_history(cls, candidates, info: ValidationInfo):
        histories = info.data.get("histories")  # absent when the histories were refused themselves
        if candidates is not None and histories is not None and len(candidates) != len(histories):
            raise ValueError(f"{len(candidates)} candidate lists for {len(histories)} histories: "
                             "give one list per history, in the same order")
        return candidates


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
