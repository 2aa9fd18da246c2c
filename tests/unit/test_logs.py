"""Logging: logfmt off a TTY, JSON on request, and no secret in any rendered value."""

from __future__ import annotations

import io
import json

import structlog

from dynomatic_daemon import logs

SECRET = "hk-0123456789abcdef"


def render(fmt: str, **fields: object) -> str:
    out = io.StringIO()
    logs.configure(fmt, stream=out, secrets=[SECRET, "pw-9876", ""])
    structlog.get_logger().info("scale_decision", **fields)
    return out.getvalue().strip()


def test_logfmt_line_starts_with_level_and_event() -> None:
    line = render("logfmt", process_type="worker", ready=25, ready_capped=True, rule=None)
    assert line.startswith("at=info event=scale_decision process_type=worker ready=25")
    assert "ready_capped=true" in line


def test_auto_is_logfmt_when_the_stream_is_not_a_tty() -> None:
    assert render("auto", x=1).startswith("at=info event=scale_decision")


def test_json_lines_parse() -> None:
    doc = json.loads(render("json", ready=3))
    assert (doc["event"], doc["at"], doc["ready"]) == ("scale_decision", "info", 3)
    assert doc["timestamp"].endswith("Z")


def test_secrets_are_scrubbed_from_every_value_even_nested() -> None:
    line = render(
        "json",
        reason=f"connect failed: postgres://u:pw-9876@h/db key={SECRET}",
        details={"headers": [f"Bearer {SECRET}"]},
    )
    assert SECRET not in line and "pw-9876" not in line
    doc = json.loads(line)
    assert doc["reason"] == "connect failed: postgres://u:***@h/db key=***"
    assert doc["details"] == {"headers": ["Bearer ***"]}
