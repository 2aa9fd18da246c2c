"""The status page's HTTP server: stdlib ``ThreadingHTTPServer`` on a background thread.

``/healthz`` is open (status and seconds since the last tick only: 200 while ticks complete,
503 once none has for the stall threshold). Everything else needs the password: HTTP basic auth
(user and password) or ``Authorization: Bearer <password>``, compared in constant time. Neither
the header nor the password is ever logged; the server writes no access log at all.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import SecretStr

from dynomatic_daemon.logs import Logger
from dynomatic_daemon.web import metrics
from dynomatic_daemon.web.live import LiveStatus

REALM = 'Basic realm="dynomatic", charset="UTF-8"'
REQUEST_TIMEOUT_SECONDS = 10
# no scripts, no frames, nothing from elsewhere
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


class Credentials:
    def __init__(self, username: str, password: SecretStr) -> None:
        self._user = username.encode()
        self._password = password.get_secret_value().encode()

    def __repr__(self) -> str:
        return "Credentials(<redacted>)"

    def accept(self, header: str | None) -> bool:
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip().encode(), self._password)
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # both compared, always: the time taken says nothing about which one was wrong
        return hmac.compare_digest(user, self._user) & hmac.compare_digest(password, self._password)


class StatusServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        credentials: Credentials,
        live: LiveStatus,
        page: Callable[[], str],
        counters: Callable[[], Any],
        stalled_after_seconds: float,
        log: Logger,
    ) -> None:
        self.credentials, self.live, self.page, self.counters = credentials, live, page, counters
        self.stalled_after = stalled_after_seconds
        self._log = log
        self._server = _Server((host, port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.2,), name="dynomatic-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        host = self._server.server_address[0]
        self._log.info("status_page_listening", host=host, port=self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def health(self) -> tuple[int, dict[str, Any]]:
        snap = self.live.snapshot()
        ok = snap.seconds_since_tick < self.stalled_after
        body = {
            "status": ("ok" if snap.ticks else "starting") if ok else "stalled",
            "seconds_since_last_tick": round(snap.seconds_since_tick, 1),
        }
        return (200 if ok else 503), body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Any, status: StatusServer) -> None:
        self.status = status
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's name, which can stall; we need none.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_SECONDS

    def do_GET(self) -> None:
        status = self.server.status
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            code, body = status.health()
            self._send(code, "application/json", json.dumps(body).encode())
        elif not status.credentials.accept(self.headers.get("Authorization")):
            headers = {"WWW-Authenticate": REALM}
            self._send(401, "text/plain; charset=utf-8", b"401: a password is needed\n", headers)
        elif path == "/metrics":
            fams = metrics.families(status.live.snapshot(), status.counters())
            self._send(200, metrics.CONTENT_TYPE, metrics.render(fams).encode())
        elif path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", status.page().encode())
        else:
            self._send(404, "text/plain; charset=utf-8", b"404: not found\n")

    def _send(
        self, code: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        for name, value in {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": POLICY,
            **(headers or {}),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log: nothing a request carries can reach the log
