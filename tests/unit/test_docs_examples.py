"""The config examples in docs/deploy.md and config.example.toml must stay valid as code moves."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.observe_config import HistorySettings, HttpSettings, NotifySettings
from dynomatic_daemon.process_config import ProcessSettings

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```toml\n(.*?)```", re.S)
# "# key = value  # comment" lines inside a block document optional keys: check those too
OPTIONAL_KEY = re.compile(r"^# (\w+ = [^#\n]+?)([ \t]+#[^\n]*)?$", re.M)


def blocks() -> list[str]:
    return BLOCK.findall((ROOT / "docs" / "deploy.md").read_text())


def test_the_guide_has_an_example_for_every_adapter() -> None:
    text = "\n".join(blocks())
    missing = [
        n for n in catalog.NAMES if f'adapter = "{n}"' not in text and f"[adapters.{n}]" not in text
    ]
    assert missing == []


@pytest.mark.parametrize("block", blocks())
def test_every_example_block_is_valid(block: str) -> None:
    data = tomllib.loads(OPTIONAL_KEY.sub(r"\1", block))
    for name, options in data.get("adapters", {}).items():
        catalog.options_model(name).model_validate(options)
    for process in data.get("process", []):
        ProcessSettings.model_validate(process)
    if "history" in data:
        HistorySettings.model_validate(data["history"])
    if "http" in data:
        HttpSettings.model_validate(data["http"])
    for target in data.get("notify", []):
        NotifySettings.model_validate(target)
