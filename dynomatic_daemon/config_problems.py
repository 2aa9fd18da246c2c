"""Turn pydantic's validation errors into one readable Problem per bad key.

Each Problem names the key path as a user would write it (``process[1].rules[0].dynos``), the bad
value (never for secrets), and, for an unknown key, the closest valid one.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping, Sequence
from difflib import get_close_matches
from typing import Any

from pydantic import BaseModel, ValidationError

from dynomatic_daemon.errors import Problem

_SECRET_KEYS = {"api_key", "url"}
_SUBPATH = re.compile(r"^((?:\[\d+\]|\.?[A-Za-z_]\w*)+): (.+)$", re.S)
_TOML_POSITION = re.compile(r"at line (\d+), column \d+")
# key = value where the value starts like none of TOML's: no quote, bracket, brace or comment
_BARE_WORD = re.compile(r"^\s*([\w.-]+)\s*=\s*([^\s\"'\[{#][^#]*?)\s*(#.*)?$")


def key_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def problems_from_validation(
    exc: ValidationError,
    root: type[BaseModel],
    env_keys: Mapping[str, str],
    missing_hints: Mapping[str, str] | None = None,
) -> list[Problem]:
    """``missing_hints``: what to say, by key path, when a required key is missing."""
    problems: list[Problem] = []
    errors = exc.errors(include_url=False)
    for err in errors:
        loc = tuple(err["loc"])
        path = key_path(loc)
        if err["type"] == "missing" and loc and loc[-1] in _SECRET_KEYS:
            continue  # already reported by name of its environment variable
        if err["type"] == "too_short" and any(len(e["loc"]) > len(loc) for e in errors):
            continue  # pydantic repeats a list's item errors as "too short"; the items say more
        if err["type"] == "extra_forbidden":
            problems.append(Problem(path, _unknown_key_message(root, loc)))
            continue
        if err["type"] == "value_error":
            problems.extend(_validator_problems(path, str(err["ctx"]["error"])))
            continue
        message = err["msg"]
        if err["type"] == "missing" and path in (missing_hints or {}):
            message = (missing_hints or {})[path]
        if err["type"] != "missing" and not (loc and loc[-1] in _SECRET_KEYS):
            message += f" (got {_show(err.get('input'))})"
        source = env_keys.get(path)
        problems.append(Problem(f"{path} (env {source})" if source else path, message))
    return problems


def _validator_problems(path: str, text: str) -> list[Problem]:
    out = []
    for line in text.splitlines():
        match = _SUBPATH.match(line)
        if match:
            sub, message = match.groups()
            joined = f"{path}{sub}" if sub.startswith("[") else f"{path}.{sub}"
            out.append(Problem(joined if path else sub, message))
        else:
            out.append(Problem(path or "config", line))
    return out


def _unknown_key_message(root: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    model = _model_at(root, loc[:-1])
    name = str(loc[-1])
    if model is None:
        return "unknown key"
    valid = sorted(f.alias or k for k, f in model.model_fields.items())
    match = get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f"did you mean {match[0]!r}?" if match else f"valid keys: {', '.join(valid)}"
    return f"unknown key; {hint}"


def _model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _find_model(field.annotation) if field else None
    return model


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _find_model(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, tuple, list):
        for arg in typing.get_args(annotation):
            found = _find_model(arg)
            if found is not None:
                return found
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def missing_hints(*, gem_app_variable: bool) -> dict[str, str]:
    """What to do about each required key, where pydantic would only say "Field required"."""
    gem = " (HEROKU_APP is set, but only the Heroku CLI reads it)" if gem_app_variable else ""
    return {
        "heroku.app": "not set; set HEROKU_APP_NAME to the name of the app to scale, or "
        f'app = "..." under [heroku] (DYNOMATIC_HEROKU_APP wins over both){gem}',
        "process": "no [[process]] table; add one per process type to scale "
        "(see config.example.toml)",
    }


def toml_hint(text: str, error: str) -> str:
    """TOML wants text in quotes, and newcomers write ``app = my-app``: say so."""
    position = _TOML_POSITION.search(error)
    if not error.startswith("Invalid value") or position is None:
        return ""
    lines = text.splitlines()
    number = int(position.group(1))
    bare = _BARE_WORD.match(lines[number - 1]) if 0 < number <= len(lines) else None
    if bare is None:
        return ""
    key, value = bare.group(1), bare.group(2)
    return f'; text goes in quotes: {key} = "{value}" (numbers and true/false do not)'
