"""The pure decision engine: facts in, a frozen Decision out. No I/O, no clock, no logging.

The step rules keep the original gem's meaning: the rule with the largest ``at_least`` that is
at most the ready count gives the desired dynos. Below every rule the desired count is 0.
Missing data (``stats is None``) never changes the formation: the decision holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from dynomatic_daemon.config import ProcessSettings, Rule
from dynomatic_daemon.models import Decision, Formation, FormationUpdate, ProcessStats


def step_target(rules: Sequence[Rule], ready: int) -> tuple[int, Rule | None]:
    """The dynos the step table asks for at ``ready`` jobs, and the rule that said so."""
    chosen: Rule | None = None
    for rule in rules:
        if rule.at_least <= ready and (chosen is None or rule.at_least > chosen.at_least):
            chosen = rule
    return (chosen.dynos, chosen) if chosen else (0, None)


def current_dynos(proc: ProcessSettings, formation: Formation) -> int:
    """Running dynos of a process entry: its quantity, or in hobby mode the names switched on."""
    if proc.worker_names is None:
        return formation.quantity(proc.type) or 0
    return sum(1 for name in proc.worker_names if (formation.quantity(name) or 0) > 0)


def quantities_for(proc: ProcessSettings, desired: int) -> dict[str, int]:
    """The formation that runs ``desired`` dynos: one type, or the first k hobby names on."""
    if proc.worker_names is None:
        return {proc.type: desired}
    return {name: int(i < desired) for i, name in enumerate(proc.worker_names)}


def decide(proc: ProcessSettings, stats: ProcessStats | None, formation: Formation) -> Decision:
    current = current_dynos(proc, formation)
    if stats is None:
        return Decision(proc.type, current, current, (), None, "holding: no queue data")
    desired, rule = step_target(proc.rules, stats.ready)
    label = f"rules[at_least={rule.at_least}]" if rule else None
    wanted = quantities_for(proc, desired)
    updates = tuple(
        FormationUpdate(ftype, qty)
        for ftype, qty in wanted.items()
        if formation.quantity(ftype) != qty
    )
    if rule is None:
        reason = f"ready {stats.ready} is below every rule"
    else:
        more = "+" if stats.ready_capped else ""
        reason = f"ready {stats.ready}{more} >= {rule.at_least} -> {desired} dynos"
    return Decision(proc.type, current, desired, updates, label, reason)
