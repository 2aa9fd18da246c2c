"""A local stand-in for the Heroku Platform API formation endpoints, served over loopback HTTP.

It keeps one app's formation in memory, enforces the Batch Update body contract of Heroku's
published schema, answers with Heroku-shaped bodies and headers, records every request, and can
be scripted to fail. End-to-end tests, the demo and the benchmarks share it.

Run it by hand (``dynomatic standin`` takes the same options)::

    python -m dynomatic_daemon.sandbox.heroku_standin --app my-app --api-key KEY \\
        --formation worker=1,urgent1=0 --size urgent1=Basic

The first line on stdout is its URL. It serves until SIGTERM or SIGINT and binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, TextIO

from dynomatic_daemon.sandbox.formation_contract import (
    SINGLE_DYNO_SIZES,
    TYPE_PATTERN,
    Invalid,
    canonical_size,
    parse_updates,
    size_id,
)

HOST = "127.0.0.1"
DEFAULT_API_KEY = "standin-api-key"
MEDIA_TYPE = "application/vnd.heroku+json"
DEFAULT_SIZE = "Standard-1X"
MAX_DELAY_SECONDS = 30.0
MAX_BODY_BYTES = 1 << 20
# Bounds memory when run by hand for hours; tests never get near it.
MAX_RECORDED = 10_000


@dataclass(slots=True)
class RecordedRequest:
    """One request as the stand-in saw it. Header names are lower-cased.

    ``at`` is when it arrived and ``answered_at`` when its answer went out (None: not yet, or
    never, when the stand-in stopped first), both on ``time.monotonic()``, a clock every process
    on the machine shares, so other processes' timestamps can be set against them. ``status`` and
    ``request_id`` are the answer's code and ``Request-Id``; ``note`` is whatever the ``observe``
    hook returned for this request.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    status: int = 0
    request_id: str | None = None
    answered_at: float | None = None
    note: Any = None


@dataclass(slots=True)
class _Canned:
    status: int | None  # None: handle the request as usual, only answer it late
    body: Any
    headers: dict[str, str]
    delay: float
    times: int
    method: str | None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class _Release:
    version: int
    created_at: str
    description: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(slots=True)
class _Process:
    type: str
    quantity: int
    size: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return self.body.encode() if isinstance(self.body, str) else json.dumps(self.body).encode()


def _error(
    status: int, error_id: str, message: str, headers: Mapping[str, str] | None = None
) -> _Reply:
    body = {"id": error_id, "message": message}
    return _Reply(status, body, {"Content-Type": "application/json", **(headers or {})})


def _with_headers(reply: _Reply, headers: Mapping[str, str]) -> _Reply:
    """The reply with ``headers`` added where it does not already set them."""
    return _Reply(reply.status, reply.body, dict(headers) | reply.headers, reply.delay)


def _accepts_v3(accept: str) -> bool:
    media, *params = (part.strip() for part in accept.split(";"))
    pairs = (p.partition("=") for p in params)
    version = {k.strip(): v.strip() for k, _, v in pairs}.get("version")
    return media.lower() == MEDIA_TYPE and version is not None and version.split(".")[0] == "3"


class HerokuStandIn:
    """One Heroku app's formation behind a real HTTP server on 127.0.0.1."""

    def __init__(
        self,
        app: str = "my-app",
        api_key: str = DEFAULT_API_KEY,
        formation: Mapping[str, int] | None = None,
        sizes: Mapping[str, str] | None = None,
        rate_limit: int = 4500,
        *,
        port: int = 0,
        observe: Callable[[RecordedRequest], Any] | None = None,
        record_limit: int = MAX_RECORDED,
    ) -> None:
        """``observe`` is called with each request as it arrives, before it changes anything;
        what it returns is kept as the request's ``note`` (e.g. who held a lock at that moment).
        The newest ``record_limit`` requests are kept.
        """
        quantities = {"web": 1, "worker": 0} if formation is None else dict(formation)
        sizes = dict(sizes or {})
        if unknown := sorted(set(sizes) - set(quantities)):
            raise ValueError(f"sizes given for process types not in the formation: {unknown}")
        if bad := sorted(t for t in quantities if not TYPE_PATTERN.fullmatch(t)):
            raise ValueError(f"process type names must match ^[-\\w]{{1,128}}$: {bad}")
        self.app = app
        self.app_id = str(uuid.uuid4())
        self._api_key = api_key
        self._port = port
        self._observe = observe
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._processes = {
            t: _Process(t, _checked_quantity(q), canonical_size(sizes.get(t, DEFAULT_SIZE)))
            for t, q in quantities.items()
        }
        # Further apps served under the same API key (and its one rate-limit bucket).
        self._apps: dict[str, dict[str, _Process]] = {app: self._processes}
        self._remaining = rate_limit
        # The app's first release, a day old: an app started in a test is not mid-deploy.
        first = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._releases = [_Release(1, first, "Initial release")]
        self._requests: deque[RecordedRequest] = deque(maxlen=record_limit)
        self._canned: list[_Canned] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._server else "stopped"
        return f"HerokuStandIn(app={self.app!r}, {where})"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> HerokuStandIn:
        if self._server is not None:
            raise RuntimeError("already started")
        self._stopping.clear()
        self._server = _Server((HOST, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="heroku-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        # Keep-alive connections would otherwise hold handler threads until the client hangs up.
        server.close_connections()
        server.server_close()
        thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> HerokuStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not running; use it as a context manager")
        return f"http://{HOST}:{self._server.server_address[1]}"

    # -- state and inspection --------------------------------------------------------------

    def add_app(self, app: str, formation: Mapping[str, int]) -> None:
        """Serve one more app, under the same API key: apps that share a token."""
        if bad := sorted(t for t in formation if not TYPE_PATTERN.fullmatch(t)):
            raise ValueError(f"process type names must match ^[-\\w]{{1,128}}$: {bad}")
        processes = {
            t: _Process(t, _checked_quantity(q), canonical_size(DEFAULT_SIZE))
            for t, q in formation.items()
        }
        with self._lock:
            self._apps[app] = processes

    def formation(self, app: str | None = None) -> dict[str, int]:
        with self._lock:
            return {t: p.quantity for t, p in self._apps[app or self.app].items()}

    def set_quantity(self, process_type: str, quantity: int, app: str | None = None) -> None:
        """Scale a type as a person with the CLI or dashboard would, behind the daemon's back."""
        with self._lock:
            processes = self._apps[app or self.app]
            if process_type not in processes:
                raise KeyError(f"no process type {process_type!r} in the stand-in formation")
            process = processes[process_type]
            process.quantity, process.updated_at = _checked_quantity(quantity), _now()
            self._changed.notify_all()

    def release(self, description: str = "Deploy") -> int:
        """Create a release now, as a deploy or a config change would; returns its version."""
        with self._lock:
            version = self._releases[-1].version + 1
            self._releases.append(_Release(version, _now(), description))
            return version

    @property
    def rate_limit_remaining(self) -> int:
        with self._lock:
            return self._remaining

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def patches(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "PATCH"]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll until ``predicate()`` holds or ``timeout`` seconds pass; True if it held."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._changed:
                self._changed.wait(min(left, 0.05))
        return True

    # -- fault injection -------------------------------------------------------------------

    def script(
        self,
        status: int,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
        method: str | None = None,
    ) -> None:
        """Queue a canned answer for the next ``times`` requests (of ``method``, if given).

        ``body`` is sent as JSON unless it is str/bytes; None sends an empty body. ``delay``
        holds the answer back, for client timeout tests. A canned answer changes nothing.
        """
        self._queue(_Canned(status, body, dict(headers or {}), delay, times, method))

    def delay(self, seconds: float, *, times: int = 1, method: str | None = None) -> None:
        """Handle the next ``times`` requests (of ``method``, if given) as usual, but hold each
        answer back ``seconds``: a slow PATCH that still applies the moment it arrives."""
        self._queue(_Canned(None, None, {}, seconds, times, method))

    def _queue(self, canned: _Canned) -> None:
        if not 0 <= canned.delay <= MAX_DELAY_SECONDS or canned.times < 1:
            raise ValueError(f"need 0 <= delay <= {MAX_DELAY_SECONDS} and times >= 1")
        canned.method = canned.method and canned.method.upper()
        with self._lock:
            self._canned.append(canned)

    def clear_script(self) -> None:
        """Drop canned answers not used yet."""
        with self._lock:
            self._canned.clear()

    # -- request handling (called from server threads) -------------------------------------

    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[_Reply, RecordedRequest]:
        path = target.split("?", 1)[0]
        is_json, body = _parse_json(raw)
        with self._lock:
            recorded = RecordedRequest(method, path, dict(headers), body, time.monotonic())
            if self._observe is not None:
                recorded.note = self._observe(recorded)
            self._requests.append(recorded)
            canned = self._next_canned(method)
            if canned is not None and canned.status is not None:
                extra = {"Content-Type": "application/json"} if canned.body is not None else {}
                reply = _Reply(canned.status, canned.body, extra | canned.headers, canned.delay)
            else:
                reply = self._route(method, path, headers, is_json, body)
                if canned is not None:
                    reply = _Reply(reply.status, reply.body, reply.headers, canned.delay)
            reply = _with_headers(reply, {"Request-Id": str(uuid.uuid4())})
            recorded.status, recorded.request_id = reply.status, reply.headers["Request-Id"]
            self._changed.notify_all()
        return reply, recorded

    def _answered(self, recorded: RecordedRequest) -> None:
        with self._lock:
            recorded.answered_at = time.monotonic()
            self._changed.notify_all()

    def _next_canned(self, method: str) -> _Canned | None:
        for canned in self._canned:
            if canned.method in (None, method):
                canned.times -= 1
                if canned.times == 0:
                    self._canned.remove(canned)
                return canned
        return None

    def _route(
        self, method: str, path: str, headers: Mapping[str, str], is_json: bool, body: Any
    ) -> _Reply:
        auth = headers.get("authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self._api_key}".encode()):
            return _error(401, "unauthorized", "Invalid credentials provided.")
        if not _accepts_v3(headers.get("accept", "")):
            message = f"Please specify a version, e.g. Accept: {MEDIA_TYPE}; version=3."
            return _error(406, "not_acceptable", message)
        if self._remaining <= 0:
            message = "Your account reached the API rate limit"
            return _error(429, "rate_limit", message, {"RateLimit-Remaining": "0"})
        self._remaining -= 1
        reply = self._dispatch(method, path, is_json, body, headers)
        return _with_headers(reply, {"RateLimit-Remaining": str(self._remaining)})

    def _dispatch(  # noqa: PLR0911 - one return per route and refusal
        self, method: str, path: str, is_json: bool, body: Any, headers: Mapping[str, str]
    ) -> _Reply:
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "apps" or parts[2] not in ("formation", "releases"):
            return _error(404, "not_found", "The requested API endpoint was not found.")
        name = self.app if parts[1] == self.app_id else parts[1]
        if name not in self._apps:
            return _error(404, "not_found", "Couldn't find that app.")
        if parts[2] == "releases":
            if method != "GET":
                return _error(404, "not_found", "The requested API endpoint was not found.")
            return self._list_releases(headers.get("range", ""))
        processes = self._apps[name]
        if method == "GET":
            return self._ok(list(processes.values()), name)
        if method == "PATCH":
            if not is_json:
                return _error(400, "bad_request", "Invalid JSON in request body.")
            return self._batch_update(body, processes, name)
        return _error(404, "not_found", "The requested API endpoint was not found.")

    def _batch_update(self, body: Any, processes: dict[str, _Process], app: str) -> _Reply:
        try:
            updates = parse_updates(body)
        except Invalid as exc:
            return _error(422, "invalid_params", str(exc))
        for ptype, quantity, size in updates:
            if ptype not in processes:
                return _error(404, "not_found", f"Couldn't find that process type ({ptype}).")
            new_size = size or processes[ptype].size
            if quantity is not None and quantity > 1 and new_size in SINGLE_DYNO_SIZES:
                return _error(
                    422, "invalid_params",
                    f"Cannot update to more than 1 {new_size} size dynos per process type.",
                )  # fmt: skip
        changed: dict[str, _Process] = {}
        for ptype, quantity, size in updates:
            process = changed[ptype] = processes[ptype]
            process.quantity = process.quantity if quantity is None else quantity
            process.size, process.updated_at = size or process.size, _now()
        return self._ok(list(changed.values()), app)

    def _list_releases(self, page_range: str) -> _Reply:
        """Releases by version, oldest first, as Heroku lists them; a Range header's
        ``order=desc`` and ``max=N`` are honoured (the daemon asks for the newest one)."""
        releases = list(self._releases)
        if "order=desc" in page_range.replace(" ", ""):
            releases.reverse()
        found = [p.split("=", 1)[1] for p in page_range.replace(" ", "").split(";") if "max=" in p]
        if found and found[0].isdigit():
            releases = releases[: int(found[0])]
        body = [
            {
                "app": {"id": self.app_id, "name": self.app},
                "created_at": r.created_at,
                "description": r.description,
                "id": r.id,
                "status": "succeeded",
                "updated_at": r.created_at,
                "version": r.version,
            }
            for r in releases
        ]
        return _Reply(200, body, {"Content-Type": "application/json"})

    def _ok(self, processes: Sequence[_Process], app: str) -> _Reply:
        body = [self._render(p, app) for p in processes]
        return _Reply(200, body, {"Content-Type": "application/json"})

    def _render(self, p: _Process, app: str) -> dict[str, Any]:
        return {
            "app": {"id": self.app_id if app == self.app else app, "name": app},
            "command": f"bin/{p.type}",
            "created_at": p.created_at,
            "dyno_size": {"id": size_id(p.size), "name": p.size},
            "id": p.id,
            "quantity": p.quantity,
            "size": p.size,
            "type": p.type,
            "updated_at": p.updated_at,
        }


def _checked_quantity(quantity: int) -> int:
    if type(quantity) is not int or quantity < 0:
        raise ValueError(f"quantity must be a non-negative integer, got {quantity!r}")
    return quantity


def _parse_json(raw: bytes) -> tuple[bool, Any]:
    """(True, value) for a JSON body, (True, None) for no body, (False, None) for garbage."""
    if not raw.strip():
        return True, None
    try:
        return True, json.loads(raw)
    except ValueError:
        return False, None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], standin: HerokuStandIn) -> None:
        self.standin = standin
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup, which can stall in sandboxes.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_changed:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self._connections_changed:
            self._connections.discard(request)
            self._connections_changed.notify_all()

    def close_connections(self, timeout: float = 5.0) -> None:
        """Hang up on every client and wait (bounded) until each handler has let go."""
        with self._connections_changed:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with self._connections_changed:
            self._connections_changed.wait_for(lambda: not self._connections, timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (e.g. after its own timeout) is expected, not a server bug.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30  # an idle keep-alive connection gives up its thread after this
    # Headers and body go out in two writes; with Nagle on, each reply waits for a delayed ACK.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        standin = self.server.standin
        length_text = self.headers.get("Content-Length") or "0"
        length = int(length_text) if length_text.isdigit() else -1
        if not 0 <= length <= MAX_BODY_BYTES:
            # The body cannot be skipped reliably, so answer and drop the connection.
            self._send(_error(400, "bad_request", "Missing, bad or oversized Content-Length."))
            self.close_connection = True
            return
        raw = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply, recorded = standin._handle(self.command, self.path, headers, raw)
        if reply.delay > 0 and standin._stopping.wait(reply.delay):
            self.close_connection = True
            return
        standin._answered(recorded)
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        payload = reply.payload()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # recorded requests replace the access log


# -- command line ----------------------------------------------------------------------------


def _pairs(text: str, flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            message = f"{flag} expects TYPE=VALUE[,TYPE=VALUE...], got {item!r}"
            raise argparse.ArgumentTypeError(message)
        pairs[key.strip()] = value.strip()
    return pairs


def _quantity(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"--formation quantities are integers >= 0, got {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The stand-in's options; ``dynomatic standin`` and ``python -m`` this module share them."""
    parser.add_argument(
        "--app",
        default="my-app",
        metavar="NAME",
        help="the app name the API answers for (default my-app)",
    )
    parser.add_argument(
        "--api-key",
        default=DEFAULT_API_KEY,
        metavar="KEY",
        help=f"the token it accepts; give the daemon the same (default {DEFAULT_API_KEY})",
    )
    parser.add_argument(
        "--formation",
        default="web=1,worker=0",
        metavar="TYPE=N[,TYPE=N...]",
        help="the process types and quantities it starts with (default web=1,worker=0)",
    )
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="TYPE=SIZE",
        help="a dyno size, e.g. worker1=Basic to get Heroku's one-dyno limit (repeatable; "
        f"default {DEFAULT_SIZE})",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        metavar="N",
        default=4500,
        help="API calls left in the account's budget; each call uses one (default 4500)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="N",
        help="the port on 127.0.0.1 (default 0: a free one)",
    )


def from_arguments(args: argparse.Namespace) -> HerokuStandIn:
    """A stand-in as the options describe it; ValueError or ArgumentTypeError if they are bad."""
    formation = {t: _quantity(q) for t, q in _pairs(args.formation, "--formation").items()}
    sizes: dict[str, str] = {}
    for text in args.size:
        sizes |= _pairs(text, "--size")
    return HerokuStandIn(args.app, args.api_key, formation, sizes, args.rate_limit, port=args.port)


def serve(standin: HerokuStandIn, out: TextIO) -> int:
    """Serve until SIGTERM or SIGINT; the first line on ``out`` is the URL."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with standin:
            out.write(f"{standin.url}\n")
            out.flush()
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dynomatic_daemon.sandbox.heroku_standin",
        description="Serve a fake Heroku formation API on 127.0.0.1 (prints its URL first).",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        standin = from_arguments(args)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        parser.error(str(exc))
    return serve(standin, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
