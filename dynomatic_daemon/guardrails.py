"""Guardrails around the policy's decision: pause, manual override, release hold, budget cap.

Pure: the policy decides as ever, then ``guard`` adjusts its Decision with what is in force for
the type. In order: a pause or an override sends nothing (the decision is still computed and
logged); a budget cap lowers the desired count (never below min_dynos); a release hold keeps a
scale-down from going out (a scale-up still does). None of them ever raises the count, so none
can pass max_dynos, and none touches a decision made without queue data: the fail-safe raise
of ``fallback_dynos`` always goes out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dynomatic_daemon.models import Decision, Formation, FormationUpdate
from dynomatic_daemon.policy import quantities_for
from dynomatic_daemon.process_config import ProcessSettings

PAUSED, OVERRIDE = "paused", "override"


@dataclass(frozen=True)
class InForce:
    """What holds one process type this tick, each as the words its log line gives."""

    pause: str | None = None
    override: str | None = None
    release_hold: str | None = None
    cap: int | None = None  # the most dynos a clamping budget allows now
    cap_reason: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """The guardrails in force, for once --json, check and the status line."""
        found = (
            ("pause", self.pause),
            ("override", self.override),
            ("release_hold", self.release_hold),
            ("budget", self.cap),
        )
        return tuple(name for name, value in found if value is not None)


NOTHING = InForce()


@dataclass(frozen=True)
class Guarded:
    decision: Decision
    hold: str | None = None  # "paused" or "override": this type sends nothing this tick


def guard(
    proc: ProcessSettings,
    decision: Decision,
    formation: Formation,
    in_force: InForce,
    *,
    has_data: bool,
    floor: int,
) -> Guarded:
    """``floor``: the lowest count the bounds allow now (min_dynos or an open window's)."""
    if not has_data:
        return Guarded(decision)  # the fail-safe on missing data is never held back
    if in_force.pause is not None:
        return Guarded(_send_nothing(decision, f"paused: {in_force.pause}"), PAUSED)
    if in_force.override is not None:
        return Guarded(_send_nothing(decision, f"manual override: {in_force.override}"), OVERRIDE)
    desired, notes = decision.desired, []
    if in_force.cap is not None and desired > max(in_force.cap, floor):
        desired = max(in_force.cap, floor)
        notes.append(f"budget caps it at {desired}: {in_force.cap_reason}")
    if in_force.release_hold is not None and desired < decision.current:
        desired = decision.current
        notes.append(f"scale-down held: {in_force.release_hold}")
    if desired == decision.desired:
        return Guarded(decision)
    return Guarded(_with_desired(proc, decision, formation, desired, notes))


def _send_nothing(decision: Decision, note: str) -> Decision:
    if decision.changes:
        note += f"; would go {decision.current} -> {decision.desired}"
    return replace(decision, updates=(), reason=f"{decision.reason}; {note}")


def _with_desired(
    proc: ProcessSettings, decision: Decision, formation: Formation, desired: int, notes: list[str]
) -> Decision:
    wanted = quantities_for(proc, desired, formation)
    updates = tuple(
        FormationUpdate(ftype, qty)
        for ftype, qty in wanted.items()
        if formation.quantity(ftype) != qty
    )
    current = decision.current
    verb = (
        f"up {current} -> {desired}"
        if desired > current
        else (f"down {current} -> {desired}" if desired < current else f"stay at {current}")
    )
    reason = "; ".join([decision.reason, *notes, f"now {verb}"])
    return replace(decision, desired=desired, updates=updates, reason=reason)
