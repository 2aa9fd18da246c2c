"""The several-apps benchmark, short: 20 apps x 3 types from one daemon, 2 of them broken.

The healthy apps must all reach their targets and keep their turns (no tick of one app more
than an interval and a second after its previous one) while the broken ones hold threads.
"""

from __future__ import annotations

import pytest

from benchmarks import fleet

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


@pytest.mark.timeout(180)
def test_twenty_apps_two_broken_the_others_scale_on_time(pg_conn: object, db_url: str) -> None:
    apps, interval = 20, 1.0
    fleet.prepare(db_url, apps)
    broken = {0: "database", 10: "token"}
    run = fleet.run_daemon(db_url, apps, interval, 15.0, broken)
    healthy = [fleet.name_of(i) for i in range(apps) if i not in broken]
    assert sorted(run.scaled) == healthy
    assert all(run.gaps[a] for a in healthy)
    late = {a: max(run.gaps[a]) for a in healthy if max(run.gaps[a]) > interval + 1.0}
    assert late == {}
    assert run.peak_rss_mb < 120
    # The apps share one database URL: one read session and one lock session, not 2 per app.
    assert run.peak_connections <= 2, run.peak_connections
    assert not any(a in run.errors for a in healthy), run.errors
    assert run.errors.get(fleet.name_of(10), 0) > 0  # the revoked token's app: errors, no write
