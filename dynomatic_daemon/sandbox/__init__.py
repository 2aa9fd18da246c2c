"""Stand-ins for the outside world: a loopback Heroku Platform API, its formation contract, an
embedded PostgreSQL server and the queue libraries' table definitions; and the invariants the
multi-process chaos soak checks its recordings against (``cluster_checks``), which the soak and
their own unit tests share.

The demo, the tests and the benchmarks use them the way a user would use the real thing. This
package imports nothing from the daemon, so a stand-in can never be shaped by the code it tests.
"""
