"""``dynomatic simulate``: replay a day of jobs through the real policy and a model of Heroku.

- ``trace``: the jobs (arrival, service time, queue), from CSV or built in;
- ``scenarios``: seeded built-in days (steady, bursty, day-night, hourly-cron, heavy-tailed);
- ``engine``: the model of Heroku and the workers (boot, slots, highest-first SIGTERM, grace,
  SIGKILL, re-queue, polling interval, formation writes);
- ``controllers``: ``policy.decide`` as the tick feeds it; ``reference``: other autoscalers;
- ``metrics``: cost, waits, churn and harm per controller.

Nothing here touches a database or the network except ``from_database`` (read-only).
"""
