"""Validation during training: loss on the response, and HR@10/NDCG@10 from decoding.

A fixed, seeded sample of validation users is scored at every validation, so numbers
are comparable across steps and runs. The loss is always taken on the response only
(whatever ``loss_on`` trains), and ``title_logprob`` is the mean log-probability of the
whole true item (FINDINGS.md measured −30.7 zero-shot for SmolLM2 on ml-latest-small;
a uniform guess over 9k titles is −9.1). Judge learning by HR/NDCG, not loss: much of an
early loss drop is the model learning the format and the years.

Under several processes every process runs the same validation on the same users
(:func:`validate_in_training`): with sharded weights (FSDP2, DeepSpeed ZeRO-3) a forward
pass is collective, so no process may validate alone, and decoding's number of forward
passes depends on the scores, so the users are not split between processes.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from ..data.dataset import Dataset
from ..model.encoding import IGNORE, Codec
from ..model.prompting import PromptBuilder
from ..prompts import PromptSpec, example_key
from ..ranking import per_user
from .losses import labelled_logits, pad_batch


class Validator:
    """`prompts`: the run's prompt builder (cap and cutoff as in training and inference);
    without it, the dataset's stored histories uncut (for benches that pass a bare spec)."""

    def __init__(self, ds: Dataset, codec: Codec, spec: PromptSpec, n_users: int, seed: int, beams: int, decode: bool, batch_size: int = 8,
                 prompts: PromptBuilder | None = None):
        ex = ds.examples("valid")
        if ex.height == 0:
            ex = ds.examples("test").head(0)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(ex.height, size=min(n_users, ex.height), replace=False)) if ex.height else np.array([], dtype=int)
        sub = ex[rows.tolist()] if len(rows) else ex
        seqs = ds.sequences
        index_of_user = {u: i for i, u in enumerate(seqs.user_ids)}
        self.items = []
        for r in sub.iter_rows(named=True):
            seen = seqs.user_items(index_of_user[r["user_id"]])[: r["position"]]
            self.items.append((example_key(r["user_id"], r["position"]), r["history"], r["target"], np.unique(seen).tolist()))
        self.codec = codec
        self.prompts = prompts if prompts is not None else PromptBuilder(spec, ds.manifest["max_history"], codec)
        self._examples: list[tuple[list[int], list[int]]] | None = None
        self._prompt_ids: list[list[int]] | None = None
        self.beams, self.decode, self.batch_size = beams, decode, batch_size
        self._decoder_parts = None

    def __len__(self) -> int:
        return len(self.items)

    @torch.inference_mode()
    def __call__(self, model) -> dict:
        if not self.items:
            return {}
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        total_loss, total_tokens, title_lp, catalogue_lp = 0.0, 0, [], []
        trie = self._trie()
        for start in range(0, len(self.items), self.batch_size):
            ids, mask, labels = pad_batch(self.examples()[start : start + self.batch_size], self.codec.pad_id, device)
            logits, target = labelled_logits(model, ids, mask, labels)  # labelled tokens, row-major
            logp = torch.log_softmax(logits, dim=-1)
            token_lp = logp.gather(1, target[:, None])[:, 0]
            per_row = (labels[:, 1:] != IGNORE).sum(1).tolist()
            for part in torch.split(token_lp, per_row):
                title_lp.append(part.sum().item())
            if trie is not None:
                catalogue_lp += _catalogue_logprob(trie, logits, target, per_row)
            total_loss -= token_lp.sum().item()
            total_tokens += token_lp.numel()
        out = {"valid_loss": total_loss / max(total_tokens, 1), "valid_title_logprob": float(np.mean(title_lp))}
        if catalogue_lp:
            out["valid_catalogue_logprob"] = float(np.mean(catalogue_lp))
        if self.decode:
            out.update(self._ranking(model))
        if was_training:
            model.train()
        return out

    def examples(self) -> list[tuple[list[int], list[int]]]:
        """(ids, labels) the loss is taken on: built as training builds its examples."""
        if self._examples is None:
            self._examples = [self.prompts.example(h, t, k, "response") for k, h, t, _ in self.items]
        return self._examples

    def prompt_ids(self) -> list[list[int]]:
        """The prompts decoding starts from: as inference builds them (the target unknown)."""
        if self._prompt_ids is None:
            self._prompt_ids = [self.prompts.prompt_ids(h, k) for k, h, _, _ in self.items]
        return self._prompt_ids

    def _trie(self):
        if self._decoder_parts is None:
            from ..decoding import Trie

            self._decoder_parts = Trie.build(self.codec)
        return self._decoder_parts

    def _ranking(self, model) -> dict:
        from ..decoding import Decoder

        decoder = Decoder(model, self.codec, self._trie(), mode="beam", beams=self.beams, batch_size=16)
        ranked = decoder.topk(self.prompt_ids(), k=10, exclude=[s for *_, s in self.items])
        pu = per_user(ranked.items, [t for _, _, t, _ in self.items])  # the kernels of `genrec evaluate`
        return {"valid_hr@10": float(pu.hits(10)[:, 9].mean()), "valid_ndcg@10": float(pu.ndcgs(10)[:, 9].mean())}


def _catalogue_logprob(trie, logits: torch.Tensor, target: torch.Tensor, per_row: list[int]) -> list[float]:
    """Log-probability of each true item under the model restricted to the catalogue.

    At every token of the response the softmax is taken over the tokens the trie allows
    there, so probability the model gives to strings that are no item does not count:
    this is the item's log-probability in the distribution constrained decoding ranks
    from (compare with popularity's log-probability of the same targets).
    """
    out = []
    start = 0
    for n in per_row:
        node = 0
        total = 0.0
        for j in range(start, start + n):
            _, toks, _ = trie.allowed([node])
            allowed = logits[j, torch.from_numpy(toks)]
            t = int(target[j])
            total += float(logits[j, t] - torch.logsumexp(allowed, 0))
            node = int(trie.step([node], [t])[0])
            if node < 0:
                break
        out.append(total)
        start += n
    return out


def validation_due(cfg, state: dict, total_steps: int) -> bool:
    """Every `eval_every` steps, at the last step, and when training time first passes a
    mark of `eval_minutes` (marks already passed when a run resumes are not repeated)."""
    step = state["step"]
    if cfg.eval_every and (step % cfg.eval_every == 0 or step == total_steps):
        return True
    if cfg.eval_minutes:
        passed = sum(1 for m in cfg.eval_minutes if state["train_seconds"] >= m * 60)
        if passed > state.get("minute_marks_done", 0) or step == total_steps:
            state["minute_marks_done"] = passed
            return True
    return False


def validate_in_training(accelerator, validator: Validator, wrapped, cfg, state: dict, report, save_best) -> bool:
    """Validate the prepared model `wrapped` on every process, identically; returns whether
    to stop early. Updates `state` (best value and step, validations without improvement),
    calls ``save_best()`` (collective) when the selection metric improved and
    ``report(entry)`` with the log entry.

    Every process scores the same users in the same order with the same weights: under
    FSDP (or DeepSpeed ZeRO-3) a forward pass is collective, and decoding takes a number
    of forward passes that depends on the scores, so splitting the users between
    processes could leave one waiting in a collective the others never reach. The work is
    repeated on every process (validation is a small fixed sample; before, the other
    processes waited idle while the first validated). The first process's metrics are
    broadcast, so every process takes the same decisions. One process: unchanged.
    """
    t0 = time.perf_counter()
    with _whole_root(accelerator, wrapped):
        metrics = validator(accelerator.unwrap_model(wrapped).model)
    metrics = _from_main(accelerator, metrics)
    key = {"loss": "valid_loss", "hr@10": "valid_hr@10", "ndcg@10": "valid_ndcg@10"}[cfg.metric]
    if key not in metrics:  # built without the decoder: select on the loss
        key = "valid_loss"
    value = metrics[key]
    if _is_better("loss" if key == "valid_loss" else cfg.metric, value, state["best"]):
        state["best"], state["best_step"], state["bad_evals"] = value, state["step"], 0
        state["best_metric"] = key.removeprefix("valid_")
        if cfg.select_best:
            save_best()
    else:
        state["bad_evals"] += 1
    report({"kind": "eval", "step": state["step"], **metrics, "users": len(validator), "seconds": round(time.perf_counter() - t0, 1)})
    stop = bool(cfg.early_stopping_patience and state["bad_evals"] >= cfg.early_stopping_patience)
    accelerator.wait_for_everyone()
    return stop


def _is_better(metric: str, new: float, best: float | None) -> bool:
    if best is None:
        return True
    return new < best if metric == "loss" else new > best


def _from_main(accelerator, obj):
    """The main process's `obj` on every process."""
    if accelerator.num_processes == 1:
        return obj
    from accelerate.utils import broadcast_object_list

    box = [obj]
    broadcast_object_list(box, from_process=0)
    return box[0]


@contextlib.contextmanager
def _whole_root(accelerator, wrapped):
    """Under FSDP2 the parameters of the root unit (those outside the wrapped decoder
    layers: embeddings, final norm, head) stay sharded between forward passes, and
    validation calls the model below the root, whose hooks would not gather them: gather
    them here instead (collective), and shard them again after."""
    if not accelerator.is_fsdp2:
        yield
        return
    wrapped.unshard()
    try:
        yield
    finally:
        wrapped.reshard()
