"""The figures and verdicts of the multi-process chaos soak, from what it recorded."""

from __future__ import annotations

import json
import signal
import statistics
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from dynomatic_daemon.sandbox import cluster_checks as checks

if TYPE_CHECKING:
    from benchmarks.cluster_soak import Cluster

GRACE = 0.5  # seconds a verified request may take to be seen by the stand-in
EXPECTED_EXIT = {"SIGTERM": 0, "SIGINT": 0, "SIGHUP": 0, "SIGKILL": -9}
TICK_EVENTS = ("standby", "scale_decision", "leader_elected")


class Report:
    def __init__(
        self, c: Cluster, api_key: str, password: str, timeout: float, drives: dict[str, str]
    ) -> None:
        self.c, self.secrets, self.timeout = c, (api_key, password), timeout
        patches = c.standin.patches()
        self.writes = [_write(r) for r in patches]
        self.before = [(r.note or (None, {}))[1] for r in patches]
        self.texts = {copy.instance: copy.log_path.read_text(errors="replace") for copy in c.copies}
        self.lines = [line for text in self.texts.values() for line in _json_lines(text)]
        decisions = [e for e in self.lines if e.get("event") == "scale_decision"]
        self.decisions = decisions
        self.by_request = {(d.get("request_id") or "", d["process_type"]): d for d in decisions}
        self.drives = drives

    def must_be_zero(self) -> list[tuple[str, int]]:
        c = self.c
        violations, _ = checks.writes_without_the_lock(self.writes, c.events, GRACE)
        return [
            ("PATCHes from a copy not holding the leader lock", len(violations)),
            ("two writers at once (PATCH while another copy held the lock)",
             len(checks.two_writers_at_once(violations))),
            ("PATCHes after their sender was signalled to stop",
             len(checks.writes_after_a_signal(self.writes, c.events, GRACE))),
            ("scale-downs on missing queue data (daemon logs)",
             len(checks.scale_downs_on_missing_data(self.decisions))),
            ("lowering PATCHes decided without queue data",
             len(checks.unexplained_scale_downs(
                 self.writes, self.before, self.by_request, self.drives))),
            ("crashes (unexpected exit, traceback, tick_failed)", self.crashes()),
            ("secrets seen in any output", sum(
                t.count(s) for t in self.texts.values() for s in self.secrets)),
        ]  # fmt: skip

    def crashes(self) -> int:
        return len(self.crash_details())

    def crash_details(self) -> list[str]:
        """Each unexpected exit, traceback, tick_failed line and line that is not JSON."""
        found = [
            f"{instance} exited {code} after {ended or 'no signal from the soak'}"
            for instance, code, ended in self.c.exits
            if not self._expected_exit(instance, code, ended)
        ]
        for instance, text in self.texts.items():
            for line in text.splitlines():
                if "Traceback" in line or '"tick_failed"' in line or not _is_json(line):
                    found.append(f"{instance}: {line[:300]}")
        return found

    def _expected_exit(self, instance: str, code: int | None, ended: str | None) -> bool:
        if ended is None:
            return False  # it stopped by itself
        if EXPECTED_EXIT[ended] == code:
            return True
        # A copy signalled while Python was still starting it (the soak's final SIGTERM to a
        # fresh replacement) dies by the default action, before it could do anything.
        ticked = any(f'"event": "{e}"' in self.texts.get(instance, "") for e in TICK_EVENTS)
        return not ticked and code == -signal.Signals[ended].value

    def figures(self) -> list[tuple[str, Any]]:
        c = self.c
        _, races = checks.writes_without_the_lock(self.writes, c.events, GRACE)
        events = Counter(str(e.get("event")) for e in self.lines)
        reasons = [str(d.get("reason", "")) for d in self.decisions]
        rows: list[tuple[str, Any]] = [
            ("daemons at a time / interval, s", f"{c.daemons} / {c.interval:g}"),
            *((f"faults: {k}", n) for k, n in sorted(c.faults.items())),
            ("faults: total", sum(n for k, n in c.faults.items() if not k.startswith("skip"))),
            ("daemon processes started", len(c.copies)),
            ("leader elections (leader_elected lines)", events["leader_elected"]),
            ("scale_decision lines", len(self.decisions)),
            ("requests at the stand-in (GET / PATCH)",
             f"{len(c.standin.requests) - len(self.writes)} / {len(self.writes)}"),
            ("writes held: the leader lock was lost",
             sum("the leader lock was lost" in r for r in reasons)),
            ("retries refused after a failure (lock lost or stopping)",
             sum("no retry of" in r for r in reasons)),
            (f"PATCHes verified just before their lock was killed (race, <= {GRACE} s)",
             len(races)),
            ("PATCHes arriving while another copy's earlier PATCH awaited its answer",
             len(checks.in_flight_handovers(self.writes, self.timeout))),
        ]  # fmt: skip
        for kind, times in sorted(c.takeovers.items()):
            mid, top = statistics.median(times), max(times)
            figures = f"{len(times)}, {mid:.2f}, {top:.2f} ({top / c.interval:.1f})"
            rows.append((f"lock moved after {kind}: n, median s, max s (max intervals)", figures))
        for kind, n in sorted(c.kept.items()):
            rows.append((f"lock stayed after {kind} (thawed before its lease ran out)", n))
        return rows

    def print(self, took: float) -> int:
        zero = self.must_be_zero()
        rows = [("minutes run", f"{took / 60:.1f}"), *self.figures()]
        rows += [(f"{k} (must be 0)", n) for k, n in zero]
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value}")
        for detail in self.crash_details():
            print(f"crash: {detail}", file=sys.stderr)
        return 1 if any(n for _, n in zero) else 0


def _write(request: Any) -> checks.Write:
    agent = request.headers.get("user-agent", "")
    sender = agent.split("(instance ", 1)[1].rstrip(")") if "(instance " in agent else "?"
    holder = (request.note or (None, {}))[0]
    body = request.body if isinstance(request.body, dict) else {}
    updates = {u["type"]: u["quantity"] for u in body.get("updates", [])}
    return checks.Write(sender, holder, request.at, request.answered_at, updates,
                        request.request_id)  # fmt: skip


def _is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            found.append(event)
    return found
