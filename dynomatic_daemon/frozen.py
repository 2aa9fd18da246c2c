"""The base of every settings model: unknown keys refused, nothing changed after loading."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    # allow_inf_nan: "inf" is a valid TOML float, and no bound may be infinite or NaN.
    # populate_by_name: a key with a file alias (history's "schema") is also set by its field
    # name, as the environment does.
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True
    )
