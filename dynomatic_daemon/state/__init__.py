"""What the daemon keeps between ticks and restarts in its own schema: guardrails in force
(pauses, manual overrides, release holds) and what autoscaling has spent per day."""
