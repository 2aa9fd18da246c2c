"""The several-apps benchmark, short: 20 apps x 3 types from one daemon, 2 of them broken.

The healthy apps must all reach their targets and keep their turns (no tick of one app more
than an interval and a second after its previous one) while the broken ones hold threads.
The benchmark runs as a program of its own, as `make bench` runs it; the tests never import it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]

# prints what the benchmark's run measured, as one JSON document
SHORT_RUN = """
import json, sys
from benchmarks import fleet
url, apps, interval = sys.argv[1], 20, 1.0
fleet.prepare(url, apps)
broken = {0: "database", 10: "token"}
run = fleet.run_daemon(url, apps, interval, 15.0, broken)
print(json.dumps({
    "healthy": [fleet.name_of(i) for i in range(apps) if i not in broken],
    "token_app": fleet.name_of(10),
    "scaled": sorted(run.scaled), "gaps": run.gaps, "errors": run.errors,
    "peak_rss_mb": run.peak_rss_mb, "peak_connections": run.peak_connections,
}))
"""


@pytest.mark.timeout(180)
def test_twenty_apps_two_broken_the_others_scale_on_time(pg_conn: object, db_url: str) -> None:
    interval = 1.0
    done = subprocess.run(
        [sys.executable, "-c", SHORT_RUN, db_url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    run = json.loads(done.stdout.strip().splitlines()[-1])
    healthy = run["healthy"]
    assert run["scaled"] == healthy
    assert all(run["gaps"].get(a) for a in healthy)
    late = {a: max(run["gaps"][a]) for a in healthy if max(run["gaps"][a]) > interval + 1.0}
    assert late == {}
    assert run["peak_rss_mb"] < 120
    # The apps share one database URL: one read session and one lock session, not 2 per app.
    assert run["peak_connections"] <= 2, run["peak_connections"]
    assert not any(a in run["errors"] for a in healthy), run["errors"]
    assert run["errors"].get(run["token_app"], 0) > 0  # the revoked token's app: errors, no write
