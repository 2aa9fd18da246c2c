"""The history store's connection asks for TLS off the local machine, as the queue readers do."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from dynomatic_daemon.store.connection import connection_kwargs


@pytest.mark.parametrize(
    ("url", "sslmode"),
    [
        ("postgresql://u:p@127.0.0.1/db", None),
        ("postgresql://u:p@localhost/db", None),
        ("postgresql://u:p@[::1]/db", None),
        ("postgresql:///db?host=/var/run/postgresql", None),
        ("postgresql://u:p@127.attacker.example/db", "require"),
        ("postgresql://u:p@db.example.com/db", "require"),
        ("postgresql://u:p@db.example.com/db?sslmode=disable", None),
    ],
)
def test_tls_is_required_unless_every_host_is_loopback(url: str, sslmode: str | None) -> None:
    kwargs = connection_kwargs(SecretStr(url), statement_timeout_ms=1000, connect_timeout_seconds=2)
    assert kwargs.get("sslmode") == sslmode
