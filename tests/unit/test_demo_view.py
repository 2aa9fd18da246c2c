"""The demo's live view: lines fit 80 columns; its end leaves the whole story on screen."""

from __future__ import annotations

import io
import random
from types import SimpleNamespace
from typing import Any, cast

from dynomatic_daemon.demo import infra
from dynomatic_daemon.demo.output import DecisionTap, Output
from dynomatic_daemon.demo.simulation import LoadPlan, Tally
from dynomatic_daemon.demo.view import LIVE_EVENTS, TtyView

LONG_REASON = "target 7 from jobs_per_dyno=5; " + "a very long explanation " * 8


def view_with_events(count: int) -> tuple[TtyView, io.StringIO]:
    out, tap = io.StringIO(), DecisionTap()
    for i in range(count):
        event: dict[str, Any] = {"event": "scale_decision", "action": "scaled", "current": i,
                                 "desired": i + 1, "ready": 1234567, "oldest_age": 123.456,
                                 "running": 99, "reason": f"#{i} {LONG_REASON}"}  # fmt: skip
        tap(None, "info", event)
    tap(None, "error", {"event": "tick_failed", "at": "error", "reason": LONG_REASON})
    heading = [
        "dynomatic demo: graphile_worker, local app dynomatic-demo-abcdef",
        f"rules: {infra.policy_text(6)}",
    ]
    output = cast(Output, SimpleNamespace(out=out, tap=tap))
    return TtyView(output, Tally(enqueued=123456, done=123450), heading, 10), out


def test_every_line_of_the_view_fits_80_columns() -> None:
    view, _out = view_with_events(9)
    plan = LoadPlan.for_duration(600, random.Random(1))
    for elapsed in (0.0, 31.0, 599.0, 600.0):
        lines = view.frame(elapsed, 10, plan, 600)
        assert all(len(line) <= 80 for line in lines), [x for x in lines if len(x) > 80]
        assert any(line.startswith("  last decision") for line in lines)


def test_the_live_view_shows_the_latest_events_and_its_end_leaves_all_of_them() -> None:
    view, out = view_with_events(LIVE_EVENTS + 3)
    plan = LoadPlan.for_duration(60, random.Random(1))
    view.open()
    view.show(12.0, 4, plan, 60)
    live = out.getvalue()
    assert "#0 " not in live and f"#{LIVE_EVENTS + 2} " in live  # the latest few only
    view.close()
    final = out.getvalue().split("\x1b[?1049l", 1)[1]  # after leaving the alternate screen
    assert all(f"#{i} target" in final for i in range(LIVE_EVENTS + 3))
    assert f"scale events ({LIVE_EVENTS + 3}, latest last):" in final
    assert "\x1b[" not in final  # plain text that stays in the scrollback
