"""The daemon's own small store in PostgreSQL: a schema of its own (``dynomatic`` by default),
written on a connection of its own, grown by numbered migrations.

Separate from the queue reads on purpose: those connections are read-only, so a least-privilege
role for the queues keeps working; this one writes, under its own ``application_name``.
"""
