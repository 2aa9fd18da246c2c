"""A day of the demo workload, accelerated and recorded: the rows are what the ticks saw, and
``history``, ``report`` and the live page show exactly those rows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from history_day import APP, DAY_PASSWORD, Day, charted, stored_events, stored_samples

pytestmark = pytest.mark.postgres


def dynomatic(day: Day, *args: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DYNOMATIC_", "HEROKU_"))}
    return subprocess.run(
        [sys.executable, "-m", "dynomatic_daemon", *args, "--config", str(day.config_path)],
        env={**keep, **day.env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def epoch_points(rows: list[dict[str, Any]], column: str) -> list[tuple[Any, float | None]]:
    return [(r["minute"], None if r[column] is None else float(r[column])) for r in rows]


def of_type(rows: list[dict[str, Any]], ptype: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["process_type"] == ptype]


def test_the_day_was_recorded_whole_and_as_the_ticks_saw_it(recorded_day: Day) -> None:
    day = recorded_day
    assert (day.dropped, day.failed) == (0, 0)
    rows = stored_samples(day.url)
    assert {r["process_type"] for r in rows} == {"worker", "urgent"}
    assert len(of_type(rows, "worker")) == len(of_type(rows, "urgent")) == 24 * 60
    for row in rows:
        seen = day.seen[(row["process_type"], row["minute"])]
        readies = [s[0] for s in seen if s[0] is not None]
        ages = [s[1] for s in seen if s[1] is not None]
        assert row["ticks"] == len(seen)
        assert row["ready_max"] == (max(readies) if readies else None)
        assert row["dynos_max"] == max(s[2] for s in seen)
        if ages:
            assert row["latency_max"] == pytest.approx(max(ages), rel=1e-5)
    peaks = [r["ready_max"] for r in of_type(rows, "worker")]
    assert max(peaks) >= 60 and min(peaks) <= 3  # a workload with bursts and quiet spells
    scaled = [e for e in stored_events(day.url) if e["kind"] == "scaled"]
    assert len(scaled) == day.scaled > 10
    assert all(e["reason"] and e["current_dynos"] != e["desired_dynos"] for e in scaled)


def test_history_json_is_the_recorded_rows(recorded_day: Day) -> None:
    out = json.loads(dynomatic(recorded_day, "history", "--since", "25h", "--json").stdout)
    rows = stored_samples(recorded_day.url)
    assert out["app"] == APP
    assert len(out["samples"]) == len(rows)
    for got, row in zip(out["samples"], rows, strict=True):
        assert got["minute"] == row["minute"].isoformat()
        assert (got["ready_max"], got["dynos_max"], got["ticks"]) == (
            row["ready_max"],
            row["dynos_max"],
            row["ticks"],
        )
    events = stored_events(recorded_day.url)
    assert [(e["kind"], e["reason"]) for e in out["events"]] == [
        (e["kind"], e["reason"]) for e in events
    ]
    only = json.loads(
        dynomatic(recorded_day, "history", "--since", "25h", "--type", "urgent", "--json").stdout
    )
    assert {s["process_type"] for s in only["samples"]} == {"urgent"}


def test_history_text_charts_peak_at_the_recorded_peaks(recorded_day: Day) -> None:
    text = dynomatic(recorded_day, "history", "--since", "25h").stdout
    rows = stored_samples(recorded_day.url)
    for ptype in ("worker", "urgent"):
        block = text.split(f"\n{ptype} (")[1].split("\n\n")[0]
        peak = max(r["ready_max"] or 0 for r in of_type(rows, ptype))
        dynos = max(r["dynos_max"] for r in of_type(rows, ptype))
        assert re.search(rf"backlog .* peak {peak}\n", block), block
        assert re.search(rf"dynos .* peak {dynos}(\n|$)", block), block
    assert "scaled" in text and "leader_change" in text


def check_page(page: str, day: Day) -> None:
    rows = stored_samples(day.url)
    drawn = charted(page)
    for ptype in ("worker", "urgent"):
        mine = of_type(rows, ptype)
        assert drawn[(ptype, "backlog", "ready")] == epoch_points(mine, "ready_max")
        assert drawn[(ptype, "backlog", "dynos")] == epoch_points(mine, "dynos_max")
        assert drawn[(ptype, "latency", "dynos")] == epoch_points(mine, "dynos_max")
        latency = drawn[(ptype, "latency", "latency")]
        expected = epoch_points(mine, "latency_max")
        assert [x for x, _ in latency] == [x for x, _ in expected]
        for (_, got), (_, want) in zip(latency, expected, strict=True):
            assert got == (None if want is None else pytest.approx(want, rel=1e-5))
    hours = sum(r["dyno_seconds"] for r in of_type(rows, "worker")) / 3600
    assert hours > 1
    per_day = re.findall(r"<td>\d{4}-\d\d-\d\d</td><td>worker</td>.*?</tr>", page)
    shown = sum(float(re.findall(r'<td class="n">([\d.]+)</td>', r)[1]) for r in per_day)
    assert shown == pytest.approx(hours, abs=0.01 * len(per_day))
    assert page.count('<span class="kind-') == len(stored_events(day.url))


def test_the_report_is_one_self_contained_file_showing_the_rows(
    recorded_day: Day, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    printed = dynomatic(recorded_day, "report", "--since", "25h", "-o", str(out)).stdout
    assert "wrote" in printed
    page = out.read_text()
    check_page(page, recorded_day)
    assert "<script" not in page and "src=" not in page and "url(" not in page
    assert not re.search(r'href="(?!data:)', page)  # nothing fetched from anywhere
    assert "Standard-1X" in page and "$" in page  # priced at the dyno size's list price
    # cost per hour recorded: whatever ran, between none and the peak of Standard-1X dynos
    (worker,) = re.findall(r"<tr><td>worker</td>((?:<td[^>]*>[^<]*</td>)+)</tr>", page)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", worker)
    per_hour, peak = float(cells[3].lstrip("$")), int(cells[4])
    assert 0 < per_hour <= peak * 25 / 720 + 1e-4


def test_the_live_page_shows_the_recorded_rows(recorded_day: Day, day_page: str) -> None:
    assert httpx.get(day_page + "/").status_code == 401
    page = httpx.get(day_page + "/", auth=("dynomatic", DAY_PASSWORD), timeout=30)
    assert page.status_code == 200
    check_page(page.text, recorded_day)
    assert 'id="live"' in page.text
