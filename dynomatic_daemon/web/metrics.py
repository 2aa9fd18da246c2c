"""Prometheus' text exposition format (0.0.4) of a live snapshot and the background counters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dynomatic_daemon.web.live import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Labels = Mapping[str, str]


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # gauge | counter
    help: str
    samples: Sequence[tuple[Labels, float]]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(families: Iterable[Family]) -> str:
    lines = []
    for fam in families:
        lines += [f"# HELP {fam.name} {fam.help}", f"# TYPE {fam.name} {fam.kind}"]
        for labels, value in fam.samples:
            inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{fam.name}{{{inner}}} {_number(value)}")
    return "\n".join(lines) + "\n"


def families(snap: Snapshot, counters: Mapping[str, Mapping[str, int]]) -> list[Family]:
    """``counters``: background work by source (``history``, ``notify:<n>``), outcome -> rows."""
    app = {"app": snap.app}
    per_type = [({**app, "process_type": o.process_type}, o) for o in snap.observations]

    def gauge(name: str, text: str, attr: str) -> Family:
        found = [(lab, float(v)) for lab, o in per_type if (v := getattr(o, attr)) is not None]
        return Family(name, "gauge", text, found)

    def by_type(name: str, text: str, counts: Mapping[str, int]) -> Family:
        samples = [({**app, "process_type": t}, float(n)) for t, n in sorted(counts.items())]
        return Family(name, "counter", text, samples)

    last = snap.last_tick_at.timestamp() if snap.last_tick_at else 0.0
    return [
        Family("dynomatic_ticks_total", "counter", "Ticks completed.", [(app, snap.ticks)]),
        Family(
            "dynomatic_last_tick_timestamp_seconds",
            "gauge",
            "When the last tick completed (Unix time).",
            [(app, last)],
        ),
        Family(
            "dynomatic_leader",
            "gauge",
            "1 while this copy holds the leader lock.",
            [(app, float(snap.role == "leader"))],
        ),
        gauge("dynomatic_ready_jobs", "Ready jobs (bounded count).", "ready"),
        gauge("dynomatic_oldest_ready_age_seconds", "Age of the oldest ready job.", "latency"),
        gauge("dynomatic_running_jobs", "Running jobs, where the library tells.", "running"),
        gauge("dynomatic_dynos", "Dynos running after the last tick.", "dynos"),
        gauge("dynomatic_desired_dynos", "Dynos the policy wanted.", "desired"),
        by_type("dynomatic_scale_writes_total", "Formation changes sent.", snap.writes),
        by_type("dynomatic_errors_total", "Ticks that failed for a type.", snap.errors),
        Family(
            "dynomatic_events_total",
            "counter",
            "Events by kind.",
            [({**app, "kind": k}, float(n)) for k, n in sorted(snap.events.items())],
        ),
        Family(
            "dynomatic_background_rows_total",
            "counter",
            "History rows and notifications by outcome (dropped and failed ones are lost).",
            [
                ({**app, "source": src, "outcome": out}, float(n))
                for src, outs in sorted(counters.items())
                for out, n in sorted(outs.items())
            ],
        ),
    ]
