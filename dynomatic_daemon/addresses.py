"""Addresses the user gives us: is a host loopback, is a database URL sound, what in it is secret.

Loopback is decided from the parsed address (``127.0.0.0/8``, ``::1``) or the reserved name
``localhost`` (RFC 6761), never from a prefix of the name: ``127.attacker.example`` is remote.
A database URL is checked before anything tries to connect with it, and the reason it is refused
never quotes it, because a malformed URL is exactly where a password ends up in the wrong field.
Nothing here raises on bad input: finding secrets must work on the URLs that fail the check too.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from psycopg import conninfo

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_URL_SCHEMES = ("postgres://", "postgresql://")
_PASSWORD_OPTION = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'?|\S+)")


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and for literal loopback addresses (IPv6 may be bracketed)."""
    if not host:
        return False
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def is_local_database(params: Mapping[str, Any]) -> bool:
    """True when every host libpq would try is a Unix socket or a loopback address."""
    hosts = str(params.get("host") or "").split(",")
    addrs = [a for a in str(params.get("hostaddr") or "").split(",") if a]
    if addrs:  # libpq connects to hostaddr; host is then only a name for TLS and passwords
        return all(is_loopback(a) for a in addrs)
    return all(h == "" or h.startswith("/") or is_loopback(h) for h in hosts)


def database_url_problem(url: str) -> str | None:
    """Why libpq would misread ``url``, or None; the answer never contains any part of it."""
    if url.startswith(_URL_SCHEMES):
        authority = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
        if _BAD_ESCAPE.search(url):
            return "a '%' that does not start a %XX escape; percent-encode it as %25"
        if authority.count("@") > 1:
            return "more than one '@' before the host; percent-encode an '@' in the password as %40"
    try:
        params = conninfo.conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - its message would quote the URL
        return "not a PostgreSQL URL or key=value connection string libpq can parse"
    ports = str(params.get("port") or "")
    if any(p and not p.isdigit() for p in ports.split(",")):
        return "the port is not a number"
    return None


def secrets_in(url: str) -> list[str]:
    """The URL, its password (as written and decoded) and its user:password part; never raises."""
    found = [url]
    try:
        if url.startswith(_URL_SCHEMES):
            authority = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
            userinfo = authority.rpartition("@")[0]
            password = userinfo.partition(":")[2]
            found += [userinfo, password, unquote(password)]
        found += [m.group(1).strip("'") for m in _PASSWORD_OPTION.finditer(url)]
        password_param = conninfo.conninfo_to_dict(url).get("password")
        if password_param:
            found.append(str(password_param))
    except Exception:  # noqa: BLE001, S110 - a URL libpq cannot parse still has its raw parts
        pass
    return [s for s in found if s]
