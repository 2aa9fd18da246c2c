"""The Batch Update body contract, written from Heroku's published formation schema.

``PATCH /apps/{app}/formation`` takes ``{"updates": [{type, quantity?, dyno_size?}, ...]}``:
``type`` required, ``quantity`` an integer, ``dyno_size`` an object naming a size by ``id`` or
``name``, and no other key (so the deprecated ``size`` or the old ``process`` fails). The
loopback stand-in answers any body this refuses with Heroku's 422 ``invalid_params``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

SIZES = (
    "Eco", "Basic", "Standard-1X", "Standard-2X", "Performance-M", "Performance-L",
    "Performance-L-RAM", "Performance-XL", "Performance-2XL", "Private-S", "Private-M",
    "Private-L", "Shield-S", "Shield-M", "Shield-L",
)  # fmt: skip
SINGLE_DYNO_SIZES = frozenset({"Eco", "Basic"})
TYPE_PATTERN = re.compile(r"[-\w]{1,128}")
_UPDATE_KEYS = frozenset({"type", "quantity", "dyno_size"})
_ALLOWED = "type, quantity, dyno_size"


def size_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"standin:dyno-size:{name}"))


_SIZE_BY_KEY = {name.lower(): name for name in SIZES} | {size_id(n): n for n in SIZES}


class Invalid(Exception):
    """A Batch Update body Heroku would answer with 422 invalid_params."""


def canonical_size(name: str) -> str:
    """Heroku's spelling of a size name given in any case ("basic" -> "Basic")."""
    try:
        return _SIZE_BY_KEY[name.lower()]
    except KeyError:
        raise ValueError(f"No such size as {name}.") from None


def parse_updates(body: Any) -> list[tuple[str, int | None, str | None]]:
    """Check a Batch Update body against the schema contract; (type, quantity, size) per item.

    Stricter than the schema in three ways a real client should never trip over: no top-level key
    but ``updates``, no negative quantity, and ``dyno_size`` must name a known size.
    """
    if not isinstance(body, dict):
        raise Invalid("Request body must be a JSON object.")
    if "updates" not in body:
        raise Invalid("Missing required param: updates.")
    if extra := sorted(set(body) - {"updates"}):
        raise Invalid(f"Unexpected top-level keys {extra}; only 'updates' is allowed.")
    if not isinstance(body["updates"], list):
        raise Invalid("'updates' must be an array.")
    return [_parse_item(i, item) for i, item in enumerate(body["updates"])]


def _parse_item(i: int, item: Any) -> tuple[str, int | None, str | None]:
    if not isinstance(item, dict):
        raise Invalid(f"updates[{i}] must be an object.")
    if extra := sorted(set(item) - _UPDATE_KEYS):
        raise Invalid(f"updates[{i}] has unexpected keys {extra}; allowed: {_ALLOWED}.")
    ptype = item.get("type")
    if not isinstance(ptype, str) or not TYPE_PATTERN.fullmatch(ptype):
        raise Invalid(f"updates[{i}].type must be a process type name (string), got {ptype!r}.")
    quantity = item.get("quantity")
    # JSON true/false decode to bool, which Python counts as int; the schema does not.
    if "quantity" in item and (type(quantity) is not int or quantity < 0):
        raise Invalid(f"updates[{i}].quantity must be a non-negative integer, got {quantity!r}.")
    size = _parse_dyno_size(i, item["dyno_size"]) if "dyno_size" in item else None
    return ptype, quantity, size


def _parse_dyno_size(i: int, value: Any) -> str:
    if not isinstance(value, dict):
        raise Invalid(f"updates[{i}].dyno_size must be an object with 'id' or 'name'.")
    key = value.get("name", value.get("id"))
    named = [value[k] for k in ("id", "name") if k in value]
    if not isinstance(key, str) or not all(isinstance(v, str) for v in named):
        raise Invalid(f"updates[{i}].dyno_size must name a size by 'id' or 'name' (strings).")
    try:
        return canonical_size(key)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
