"""History: what the scaler saw and did, kept in PostgreSQL (opt-in, bounded), and its views.

Per process type one row per minute (the minute's ticks rolled up: peaks, dynos, dyno-seconds,
errors) and one row per event. ``recorder`` collects them from the tick without blocking it,
``writer`` writes them on a thread of its own, ``queries`` reads them back, and ``terminal``,
``report`` and the status page show them.
"""
