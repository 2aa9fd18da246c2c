"""A 422 dyno limit, with the real daemon: it binds the size it names, not the whole batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import API_KEY, enqueue

from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
CONFIG = """
[heroku]
app = "my-app"
resync_seconds = 0

[daemon]
interval_seconds = 0.5

[[process]]
type = "worker"
adapter = "delayed_job"
queues = ["default"]
rules = [ { at_least = 0, dynos = 1 }, { at_least = 10, dynos = 4 } ]

[[process]]
type = "urgent"
adapter = "delayed_job"
queues = ["critical"]
rules = [ { at_least = 0, dynos = 0 }, { at_least = 10, dynos = 2 } ]
"""


@pytest.fixture
def mixed_sizes() -> Iterator[HerokuStandIn]:
    formation = {"web": 1, "worker": 1, "urgent": 0}
    with HerokuStandIn("my-app", API_KEY, formation, sizes={"urgent": "Basic"}) as standin:
        yield standin


def test_a_basic_limit_clamps_the_basic_type_only(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    mixed_sizes: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    path = tmp_path / "dynomatic.toml"
    path.write_text(CONFIG)
    env = {**daemon_env, "DYNOMATIC_HEROKU_API_URL": mixed_sizes.url}
    enqueue(delayed_jobs, 20, "default")
    enqueue(delayed_jobs, 20, "critical")
    daemon = spawn(["run", "--config", str(path), "--log-format", "json"], env)
    # worker=4 and urgent=2 go out together; Heroku refuses "more than 1 Basic" for urgent only
    assert mixed_sizes.wait_for(
        lambda: mixed_sizes.formation() == {"web": 1, "worker": 4, "urgent": 1}, timeout=15
    ), daemon.output()
    bodies = [{u["type"]: u["quantity"] for u in p.body["updates"]} for p in mixed_sizes.patches()]
    assert bodies == [{"worker": 4, "urgent": 2}, {"worker": 4, "urgent": 1}]
