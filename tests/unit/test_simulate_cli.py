"""``dynomatic simulate`` from the command line: inputs, outputs and refusals (no database)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET  # parses our own output, not untrusted input
from pathlib import Path
from typing import Any

import pytest

from dynomatic_daemon import cli

CONFIG = """
[heroku]
app = "my-app"
[daemon]
interval_seconds = 10
[[process]]
type = "worker"
adapter = "delayed_job"
jobs_per_dyno = 1
max_dynos = 2
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["simulate", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_trace_replays_as_worked_out_by_hand(tmp_path: Path, capsys: Any) -> None:
    # One job at 5 s, 20 s long. Tick 0: nothing; tick 10: woken, booting until 55; the job runs
    # 55-75 (waited 50 s). The last dyno idles from the tick at 80 and stops at the tick at 680
    # (idle_before_zero_seconds = 600): billed 10-680. No secrets in the environment.
    config = write(tmp_path, "a.toml", CONFIG)
    trace = write(tmp_path, "t.csv", "arrival_s,service_s\n5,20\n")
    code, out, err = run(
        capsys, "--config", str(config), "--trace", str(trace), "--references", "none",
        "--boot-seconds", "45", "--worker-slots", "1", "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["trace"] == {
        "name": "t", "jobs": 1, "duration_seconds": 7200.0, "start": "2026-03-02T00:00:00+00:00",
    }  # fmt: skip
    (result,) = doc["results"]
    metrics = result["metrics"]
    assert (result["policy"], result["source"], result["process_type"]) == (
        str(config),
        str(config),
        "worker",
    )
    assert metrics["wait_p50"] == 50.0 and metrics["jobs"] == 1
    assert metrics["dyno_hours"] == pytest.approx(670 / 3600, abs=1e-4)
    assert (metrics["formation_writes"], metrics["wakes"], metrics["cold_starts"]) == (2, 1, 0)
    assert metrics["cost_usd"] == pytest.approx(670 / 3600 * 25 / 720, abs=1e-4)


def test_each_process_type_replays_the_jobs_of_its_queues(tmp_path: Path, capsys: Any) -> None:
    urgent = '[[process]]\ntype = "urgent"\nadapter = "delayed_job"\njobs_per_dyno = 1\n'
    two = CONFIG + 'queues = ["default"]\n' + urgent + 'queues = ["urgent*"]\n'
    config = write(tmp_path, "two.toml", two)
    trace = write(
        tmp_path,
        "t.csv",
        "arrival_s,service_s,queue\n1,1,default\n2,1,urgent-1\n3,1,urgent-2\n4,1,other\n",
    )
    code, out, _ = run(
        capsys, "--config", str(config), "--trace", str(trace), "--references", "hirefire", "--json"
    )
    assert code == 0
    jobs = {r["policy"]: r["metrics"]["jobs"] for r in json.loads(out)["results"]}
    assert jobs == {
        f"{config} [worker]": 1,
        f"{config} [urgent]": 2,
        "hirefire [worker]": 1,
        "hirefire [urgent]": 2,
    }


def test_two_configs_side_by_side_with_the_references_in_a_table(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = write(tmp_path, "a.toml", CONFIG)
    b = write(tmp_path, "b.toml", CONFIG.replace("max_dynos = 2", "max_dynos = 2\nmin_dynos = 2"))
    code, out, _ = run(
        capsys, "--config", str(a), "--config", str(b), "--scenario", "heavy-tailed", "--seed", "2"
    )
    assert code == 0
    assert (
        out.startswith("heavy-tailed: ")
        and "dyno size standard-1x ($0.0347/h, $0.83/day); seed 2" in out
    )
    table = out.split("cost per day at the replay's pace:")[0].splitlines()[2:]
    rows = {line.split()[0]: line.split() for line in table if line.strip()}
    assert {str(a), str(b), "always-max", "hirefire", "keda-hpa", "judoscale"} <= set(rows)
    assert float(rows[str(b)][1]) == pytest.approx(48.0, abs=0.5)  # min 2 = max 2: 48 dyno-h
    assert "dynos over the replay:" in out
    daily = out.split("cost per day at the replay's pace:")[1].split("dynos over")[0]
    hours = float(out.split(" jobs over ")[1].split(" h ")[0])
    per_day = float(rows[str(b)][2]) * 24 / hours  # the replay's cost, scaled to a day
    assert f"  {b}: ${per_day:,.2f}" in daily


def test_the_default_config_comes_from_the_environment(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNOMATIC_CONFIG", str(write(tmp_path, "env.toml", CONFIG)))
    trace = write(tmp_path, "t.csv", "arrival_s,service_s\n1,1\n")
    code, out, _ = run(capsys, "--trace", str(trace), "--references", "none", "--json")
    assert code == 0 and json.loads(out)["results"][0]["source"] == str(tmp_path / "env.toml")


def test_the_html_page_is_self_contained_and_charts_every_policy(
    tmp_path: Path, capsys: Any
) -> None:
    config = write(tmp_path, "a.toml", CONFIG)
    page = tmp_path / "out.html"
    code, out, _ = run(
        capsys,
        "--config",
        str(config),
        "--scenario",
        "bursty",
        "--references",
        "hirefire,keda-hpa",
        "--html",
        str(page),
    )
    assert code == 0 and f"chart: {page}" in out
    text = page.read_text()
    assert "<script" not in text and "src=" not in text and "href=" not in text
    svgs = re.findall(r"<svg.*?</svg>", text, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        root = ET.fromstring(svg)  # noqa: S314
        names = {p.attrib["data-series"] for p in root.iter("{http://www.w3.org/2000/svg}path")}
        assert names == {str(config), "hirefire", "keda-hpa"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("arrival,service\n1,2\n", "the header must be arrival_s,service_s[,queue]"),
        ("arrival_s,service_s\n1,two\n", "t.csv:2: arrival_s and service_s must be numbers"),
        ("arrival_s,service_s\n-1,2\n", "t.csv:2: arrival_s must be a number >= 0"),
        ("arrival_s,service_s\n1,2,q,x\n", "t.csv:2: expected 2 or 3 columns, got 4"),
        ("arrival_s,service_s\n", "no jobs after the header"),
    ],
)
def test_a_bad_trace_is_refused_with_its_line(
    tmp_path: Path, capsys: Any, text: str, message: str
) -> None:
    config = write(tmp_path, "a.toml", CONFIG)
    trace = write(tmp_path, "t.csv", text)
    code, _, err = run(capsys, "--config", str(config), "--trace", str(trace))
    assert code == 2 and message in err


def test_a_bad_config_is_refused_naming_the_key(tmp_path: Path, capsys: Any) -> None:
    config = write(
        tmp_path, "a.toml", CONFIG + "idle_before_zero_seconds = -5\ndyno_boot_seconds = 9999\n"
    )
    code, _, err = run(capsys, "--config", str(config), "--scenario", "steady")
    assert code == 2
    assert f"{config}: process[0].idle_before_zero_seconds" in err
    assert f"{config}: process[0].dyno_boot_seconds" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--scenario", "monday"],
        ["--scenario", "steady", "--references", "autoscaler-9000"],
        ["--scenario", "steady", "--trace", "x.csv"],
        ["--scenario", "steady", "--boot-seconds", "-1"],
        ["--from-database", "--since", "a week"],
        [],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["simulate", *argv])
    assert exc.value.code == 2


SEVERAL_APPS = """
[defaults.daemon]
interval_seconds = 10
[defaults.process]
adapter = "delayed_job"
jobs_per_dyno = 1
[[app]]
name = "shop-production"
[[app.process]]
type = "worker"
max_dynos = 2
[[app]]
name = "shop-staging"
[[app.process]]
type = "worker"
max_dynos = 2
min_dynos = 2
"""


def test_one_app_of_several_is_replayed_under_its_name(tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path, "apps.toml", SEVERAL_APPS)
    trace = write(tmp_path, "t.csv", "arrival_s,service_s\n1,1\n")
    argv = ["--config", str(path), "--trace", str(trace), "--references", "none", "--json"]
    code, out, _ = run(capsys, *argv, "--app", "shop-staging")
    (staging,) = json.loads(out)["results"]
    assert code == 0 and staging["source"] == f"{path} [shop-staging]"
    _, out, _ = run(capsys, *argv, "--app", "shop-production")
    (production,) = json.loads(out)["results"]
    assert production["source"] == f"{path} [shop-production]"
    assert staging != {**production, "source": staging["source"]}  # min_dynos 2 costs more
    code, _, err = run(capsys, *argv)
    assert code == 2 and "2 apps (shop-production, shop-staging); name one with --app" in err
