"""The config examples in docs/guardrails.md load as they are and mean what the text says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dynomatic_daemon import config

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "guardrails.md").read_text()
BLOCK = re.compile(r"```toml\n(.*?)```", re.S)
ENV = {"HEROKU_API_KEY": "hk-docs-0000", "DATABASE_URL": "postgres://app@db.example.com/app"}


def section(title: str) -> str:
    return DOC.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def load(block: str, tmp_path: Path) -> config.Settings:
    path = tmp_path / "dynomatic.toml"
    path.write_text(block)
    return config.load(path, ENV)


@pytest.mark.parametrize("block", BLOCK.findall(DOC))
def test_every_example_loads(block: str, tmp_path: Path) -> None:
    assert load(block, tmp_path).state.enabled


def test_the_people_and_deploys_example(tmp_path: Path) -> None:
    (block,) = BLOCK.findall(section("Working with people and deploys"))
    (worker,) = load(block, tmp_path).process
    assert (worker.manual_override_seconds, worker.release_hold_seconds) == (900, 300)


def test_the_budgets_example(tmp_path: Path) -> None:
    (block,) = BLOCK.findall(section("Budgets"))
    budget = load(block, tmp_path).budget
    assert budget.mode == "clamp" and budget.max_dyno_hours_per_day == 120
    assert budget.process["worker"].max_dyno_hours_per_day == 48
    assert budget.prices["performance-m"] == pytest.approx(0.30)


def test_a_budget_for_a_type_not_driven_is_refused(tmp_path: Path) -> None:
    (block,) = BLOCK.findall(section("Budgets"))
    with pytest.raises(config.ConfigError, match=r"budget\.process\.nope"):
        load(block.replace("worker = {", "nope = {"), tmp_path)
