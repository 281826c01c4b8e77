"""Typed configuration: one source of truth for defaults, validation and --help.

Configs are pydantic models with ``extra="forbid"`` (an unknown key is an error, never a
silent default) whose field descriptions are the CLI help. Presets are YAML files in
``genrec/presets``; overrides are dotted ``key=value`` pairs, read by
:func:`parse_overrides` (the one parser: every command that takes settings takes them as
``--set KEY=VALUE``). The resolved config is written into every output folder.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError, GenrecError

M = TypeVar("M", bound="Config")


class Config(BaseModel):
    # allow_inf_nan: lr=inf or a NaN threshold is never a setting anyone means; pydantic
    # would accept it and training would "finish" with a NaN loss
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)

    @classmethod
    def build(cls: type[M], data: dict[str, Any] | None = None, overrides: list[str] | None = None) -> M:
        """Validate `data` plus dotted `overrides`, reporting every problem at once."""
        merged = dict(data or {})
        for key, value in parse_overrides(overrides or []).items():
            set_dotted(merged, key, value)
        try:
            return cls.model_validate(merged)
        except ValidationError as e:
            raise ConfigError(_format_errors(e, cls), cls.help_hint()) from None

    @classmethod
    def help_hint(cls) -> str:
        """Where a user finds the fields (the fix text of a ConfigError)."""
        if cls.__module__.startswith("genrec.recommenders."):  # a method's settings (SASRecConfig, ...)
            return "`genrec evaluate --fields` lists each method's settings and allowed values (set with --set KEY=VALUE)"
        return f"see `genrec {cls.__name__.removesuffix('Config').lower()} --help` for the fields and allowed values"

    @classmethod
    def field_names(cls) -> list[str]:
        """Every settable field, nested ones dotted (``lora.r``): the keys ``--set`` takes."""
        return _field_names(cls)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls: type[M], path: str | Path) -> M:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise GenrecError(f"{path} does not exist", "check the path") from None
        except yaml.YAMLError as e:
            raise GenrecError(f"{path} is not valid YAML: {e}", "fix the file") from None
        return cls.build(data)

    @classmethod
    def field_help(cls) -> str:
        """One line per field (dotted for nested configs): name, default, description."""
        lines = []
        for name, f in cls.model_fields.items():
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, Config):
                for sub in ann.field_help().splitlines():
                    lines.append(f"{name}.{sub}")
                continue
            lines.append(f"{name}={f.default!r}: {f.description or ''}")
        return "\n".join(lines)


def _format_errors(e: ValidationError, model: type[BaseModel]) -> list[str]:
    """One line per problem; an unknown key gets the closest field names of `model`."""
    names = _field_names(model)
    out = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(config)"
        if err["type"] == "extra_forbidden":
            out.append(unknown_key(loc, names))
        else:
            out.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
    return out


def unknown_key(key: str, names: list[str]) -> str:
    """The problem line for a `key` that is none of `names`, with the closest names."""
    close = _did_you_mean(key, names)
    hint = f", did you mean {' or '.join(close)}?" if close else " (check the spelling)"
    return f"{key}: unknown key{hint}"


def check_keys(keys: Iterable[str], names: Iterable[str], fix: str) -> None:
    """Raise a ConfigError naming every key of `keys` that is none of `names` (each with
    the closest names): for settings that are not one config's fields (``genrec evaluate
    --set`` for the genrec method)."""
    names = list(names)
    problems = [unknown_key(k, names) for k in keys if k not in names]
    if problems:
        raise ConfigError(problems, fix)


def _field_names(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every settable field of `model`, nested ones dotted (``lora.r``)."""
    names = []
    for name, f in model.model_fields.items():
        nested = [a for a in (f.annotation, *get_args(f.annotation)) if isinstance(a, type) and issubclass(a, BaseModel)]
        names += _field_names(nested[0], f"{prefix}{name}.") if nested else [f"{prefix}{name}"]
    return names


def _did_you_mean(key: str, names: list[str]) -> list[str]:
    """Up to three field names close to an unknown `key`: by spelling (difflib), after the
    field a longer name starts with or abbreviates, which spelling distance misses for
    short names."""
    parent, _, leaf = key.rpartition(".")
    words = [w for w in re.split(r"[_\-]+", leaf) if w]
    scope = f"{parent}." if parent else ""
    # lora_r -> lora.r; lr_rate -> lr; learning_rate -> lr
    guesses = [scope + leaf.replace("_", "."), scope + words[0], scope + "".join(w[0] for w in words)] if words else []
    close = [g for g in guesses if g in names and g != key]
    close += difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    return list(dict.fromkeys(close))[:3]


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Parse ``a.b=value`` pairs (the values of ``--set``, or a library caller's list) into
    ``{dotted key: value}``; a later pair for the same key wins.

    Values are read as YAML scalars (``1e-3``, ``true``, ``null``, ``[q_proj, v_proj]``);
    an empty value is None. Keys may be written with dashes (``max-minutes``)."""
    out: dict[str, Any] = {}
    problems = []
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not eq or not key:
            problems.append(f"{pair!r} is not KEY=VALUE")
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        out[key] = value
    if problems:
        raise ConfigError(problems, "write each setting as --set KEY=VALUE, e.g. --set lr=1e-3 --set lora.r=16")
    return out


def set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        nxt = d.get(p)
        if not isinstance(nxt, dict):
            nxt = {} if nxt is None else dict(nxt) if isinstance(nxt, dict) else {}
            d[p] = nxt
        d = nxt
    d[parts[-1]] = value


def load_preset(kind: str, name: str) -> dict[str, Any]:
    """Read preset `name` of `kind` (``train``) from the package, or a YAML path."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        text = p.read_text(encoding="utf-8")
    else:
        res = resources.files("genrec.presets").joinpath(f"{kind}-{name}.yaml")
        if not res.is_file():
            available = sorted(
                r.name.removeprefix(f"{kind}-").removesuffix(".yaml")
                for r in resources.files("genrec.presets").iterdir()
                if r.name.startswith(f"{kind}-")
            )
            raise GenrecError(f"unknown {kind} preset {name!r}", f"use one of {available} or a path to a .yaml file")
        text = res.read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}
