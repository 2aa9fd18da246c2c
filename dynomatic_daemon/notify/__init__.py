"""Notifications: events sent to webhooks (generic JSON, Slack) from a background worker."""
