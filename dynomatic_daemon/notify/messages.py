"""What a notification says: one line of text per event, and the body each kind of target takes."""

from __future__ import annotations

from typing import Any

from dynomatic_daemon.events import Event


def text(event: Event, suppressed: int = 0) -> str:
    f, who = event.fields, event.process_type or "the scaler"
    line = {
        "scaled": f"{who} scaled {event.current} -> {event.desired}",
        "at_max": f"{who} has run at its maximum of {event.current} dynos for "
        f"{f.get('minutes', '?')} minutes",
        "stalled": f"no tick has completed for {f.get('seconds_since_last_tick', '?')} s: the "
        "database or the Heroku API may be stuck",
        "resumed": "ticks complete again",
        "fallback": f"{who}: queue reads keep failing; fallback raised it "
        f"{event.current} -> {event.desired}",
        "refused": f"Heroku refused a formation {f.get('call', 'call')}",
        "api_error": f"the Heroku API failed a formation {f.get('call', 'call')}",
        "external_change": f"{who} was scaled outside the scaler: expected {f.get('expected')}, "
        f"found {f.get('actual')}",
        "leader_change": f"this copy is now {f.get('role')} (was {f.get('previous')})",
        "held": f"{who}: a change was due but held back",
        "read_failed": f"{who}: the queues could not be read; the formation is held",
    }.get(event.kind, event.kind)
    out = f"[{event.app}] {line}"
    if event.reason and event.kind not in ("stalled", "resumed", "leader_change"):
        out += f": {event.reason}"
    if suppressed:
        out += f" ({suppressed} similar not sent since the last one)"
    return out


def body(kind: str, event: Event, suppressed: int) -> dict[str, Any]:
    message = text(event, suppressed)
    if kind == "slack":
        return {"text": message}
    return {
        "app": event.app,
        "kind": event.kind,
        "process_type": event.process_type,
        "at": event.at.isoformat(),
        "current": event.current,
        "desired": event.desired,
        "reason": event.reason,
        "fields": {k: v if isinstance(v, int | float | str | bool) or v is None else str(v)
                   for k, v in event.fields.items()},
        "suppressed_since_last": suppressed,
        "text": message,
    }  # fmt: skip
