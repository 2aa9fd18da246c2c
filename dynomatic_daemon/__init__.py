"""dynomatic-daemon: scale Heroku worker dynos from the backlog of a Postgres-backed job queue."""

__version__ = "0.1.0"
