"""The settings of the guardrails around the policy: ``[state]`` (where pauses, overrides and
spend are kept) and ``[budget]`` (caps on what autoscaling may spend).

The state store is the daemon's own schema, the one ``[history]`` writes to. It is on when
``[state] enabled = true`` (its own ``url_env`` and ``schema``), or else when ``[history]`` is
enabled (then it shares history's URL and schema). Without it, pauses cannot be given, and
overrides and spend live in the daemon's memory only (a restart forgets them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator

from dynomatic_daemon.errors import Problem
from dynomatic_daemon.frozen import Frozen
from dynomatic_daemon.observe_config import ENV_NAME, IDENTIFIER, HistorySettings

STATE_STATEMENT_TIMEOUT_MS = 1000  # the tick waits on these reads: keep them short
STATE_CONNECT_TIMEOUT_SECONDS = 2


class StateSettings(Frozen):
    enabled: bool = False
    url_env: Annotated[str, Field(pattern=ENV_NAME)] = "DATABASE_URL"
    url: SecretStr | None = Field(default=None, exclude=True)
    schema_name: Annotated[
        str, Field(pattern=IDENTIFIER, validation_alias=AliasChoices("schema", "schema_name"))
    ] = "dynomatic"
    create: bool = True  # create or upgrade the schema on first use


class StoreTarget(Frozen):
    """Where the state store is, once ``[state]`` and ``[history]`` are resolved."""

    url: SecretStr
    schema_name: str
    create: bool


def store_target(state: StateSettings, history: HistorySettings) -> StoreTarget | None:
    if state.enabled and state.url is not None:
        return StoreTarget(url=state.url, schema_name=state.schema_name, create=state.create)
    if history.enabled and history.url is not None:
        return StoreTarget(url=history.url, schema_name=history.schema_name, create=history.create)
    return None


class BudgetLimit(Frozen):
    max_dyno_hours_per_day: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    max_monthly_usd: Annotated[float, Field(gt=0, le=10_000_000)] | None = None

    @property
    def any(self) -> bool:
        return self.max_dyno_hours_per_day is not None or self.max_monthly_usd is not None


class BudgetSettings(BudgetLimit):
    """``[budget]``: limits for the whole app (every type the daemon drives, together), and
    ``[budget.process.<type>]`` limits for one type. ``clamp`` caps the desired count so the
    budget holds for the rest of the day or month; ``alert`` only notifies and logs."""

    mode: Literal["clamp", "alert"] = "clamp"
    process: Mapping[str, BudgetLimit] = Field(default_factory=dict)
    # US dollars per dyno-hour by size, over the list prices in prices.py (discounts, Private)
    prices: Mapping[str, Annotated[float, Field(ge=0, le=1000)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> BudgetSettings:
        empty = [t for t, limit in self.process.items() if not limit.any]
        if empty:
            raise ValueError(
                f"process.{empty[0]}: give max_dyno_hours_per_day, max_monthly_usd or both"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.any or bool(self.process)


def apply_state_secret(
    raw: dict[str, Any], env: Mapping[str, str], problems: list[Problem]
) -> None:
    """Copy the state store's URL in from the variable ``[state] url_env`` names."""
    state = raw.get("state")
    if not isinstance(state, dict):
        return
    if "url" in state:
        var = state.get("url_env", "DATABASE_URL")
        problems.append(Problem("state.url", f"secrets come from the environment only (set {var})"))
        del state["url"]
    var = state.get("url_env", "DATABASE_URL")
    if isinstance(var, str) and env.get(var, "").strip():
        state["url"] = env[var].strip()


def missing_state_secret(state: StateSettings) -> list[Problem]:
    if state.enabled and state.url is None:
        return [Problem(state.url_env, "not set; [state] is enabled and url_env names it")]
    return []
