"""The model of Heroku and of the workers that a replay drives, one event at a time.

- A formation of ``N`` dynos is dynos 1..N. A new dyno is billed from its start and takes jobs
  ``boot_seconds`` later, with ``worker_slots`` slots.
- A free slot takes the oldest ready job at once; among free slots the one that takes a job is
  chosen at random (seeded), as workers polling the same table race for it, so running jobs are
  spread over every dyno.
- Scale-down stops the highest-numbered dynos: SIGTERM, the dyno takes no new job, its running jobs
  get ``grace_seconds``; what is still running then is SIGKILLed, counted as killed with the time
  it had run as work lost, and queued again (as a new ready job at the kill time). A dyno is billed
  until its last job ends or it is killed; an idle or still-booting dyno stops at once.
- Every ``controller.interval`` seconds (from 0) the controller sees what an adapter would read
  (ready count, oldest ready age, running count) and the formation's quantity, and answers with
  the quantity it wants; a different answer is one formation write.

At equal times, job ends, boots and kills come first, then arrivals, then the tick.
"""

from __future__ import annotations

import heapq
import random
from collections import deque

from dynomatic_daemon.simulate.records import Controller, Observation, Platform, Run
from dynomatic_daemon.simulate.trace import Trace

INF = float("inf")
DONE, BOOTED, KILL = 0, 1, 2  # event kinds, in the order they run at one instant
QUICK_RESTART_SECONDS = 60.0  # a wake this soon after reaching zero is a "cold start"
FLAP_SECONDS = 300.0  # an up this soon after a down is a flap


class _Dyno:
    __slots__ = ("exited", "jobs", "started", "stopping", "up")

    def __init__(self, started: float, up: bool) -> None:
        self.started, self.up = started, up
        self.stopping = self.exited = False
        self.jobs: set[int] = set()


def replay(trace: Trace, controller: Controller, platform: Platform, initial: int = 0) -> Run:
    return _Replay(trace, controller, platform, initial).run()


class _Replay:
    def __init__(self, trace: Trace, controller: Controller, platform: Platform, initial: int):
        self.trace, self.controller, self.platform = trace, controller, platform
        n = len(trace)
        self.eligible = list(trace.arrivals)
        self.start = [-1.0] * n
        self.run_id = [0] * n
        self.where: list[_Dyno | None] = [None] * n
        self.ready: deque[int] = deque()
        # (when, kind, sequence, dyno or None, job, run id): the sequence keeps ties in order
        self.heap: list[tuple[float, int, int, _Dyno | None, int, int]] = []
        self.seq = 0
        self.random = random.Random(platform.seed).random  # noqa: S311 - a seeded model
        self.formation = [_Dyno(0.0, up=True) for _ in range(initial)]
        self.pool = [d for d in self.formation for _ in range(platform.worker_slots)]
        self.running = 0
        self.out = Run(controller.name, trace.duration, waits=[])
        self.zero_since = -INF if initial == 0 else INF
        self.last_down = -INF

    def run(self) -> Run:
        arrivals, duration, heap = self.trace.arrivals, self.trace.duration, self.heap
        i, n, next_tick = 0, len(arrivals), 0.0
        while True:
            t_event = heap[0][0] if heap else INF
            t_arrival = arrivals[i] if i < n else INF
            if t_event <= t_arrival and t_event <= next_tick:
                if t_event > duration:
                    break
                self._event(*heapq.heappop(heap))
            elif t_arrival <= next_tick:
                if t_arrival > duration:
                    break
                self._arrive(i, t_arrival)
                i += 1
            else:
                if next_tick > duration:
                    break
                self._tick(next_tick)
                next_tick += self.controller.interval
        return self._finish()

    def _push(
        self, when: float, kind: int, dyno: _Dyno | None, job: int = -1, rid: int = 0
    ) -> None:
        heapq.heappush(self.heap, (when, kind, self.seq, dyno, job, rid))
        self.seq += 1

    def _dispatch(self, now: float) -> None:
        ready, pool, services = self.ready, self.pool, self.trace.services
        while ready and pool:
            job = ready.popleft()
            k = int(self.random() * len(pool))
            dyno = pool[k]
            pool[k] = pool[-1]
            pool.pop()
            self.start[job] = now
            self.where[job] = dyno
            dyno.jobs.add(job)
            self.running += 1
            self._push(now + services[job], DONE, None, job, self.run_id[job])

    def _arrive(self, job: int, now: float) -> None:
        self.ready.append(job)
        self._dispatch(now)
        self.out.max_backlog = max(self.out.max_backlog, len(self.ready))

    def _event(
        self, now: float, kind: int, _seq: int, dyno: _Dyno | None, job: int, rid: int
    ) -> None:
        if dyno is None:  # a job ended, unless it was killed (and maybe restarted) meanwhile
            if rid == self.run_id[job]:
                self._done(job, now)
        elif dyno.exited:
            return
        elif kind == BOOTED and not dyno.stopping:
            dyno.up = True
            self.pool.extend([dyno] * self.platform.worker_slots)
            self._dispatch(now)
        elif kind == KILL:
            self._kill(dyno, now)

    def _done(self, job: int, now: float) -> None:
        dyno = self.where[job]
        if dyno is None:
            return
        dyno.jobs.discard(job)
        self.running -= 1
        if not dyno.stopping:
            self.pool.append(dyno)
            self._dispatch(now)
        elif not dyno.jobs:
            self._exit(dyno, now)

    def _kill(self, dyno: _Dyno, now: float) -> None:
        for job in sorted(dyno.jobs):
            self.out.killed += 1
            self.out.work_lost_seconds += now - self.start[job]
            self.run_id[job] += 1
            self.start[job] = -1.0
            self.eligible[job] = now
            self.ready.append(job)
            self.running -= 1
        dyno.jobs.clear()
        self._exit(dyno, now)
        self._dispatch(now)
        self.out.max_backlog = max(self.out.max_backlog, len(self.ready))

    def _exit(self, dyno: _Dyno, now: float) -> None:
        if not dyno.exited:
            dyno.exited = True
            self.out.dyno_seconds += now - dyno.started

    def _tick(self, now: float) -> None:
        ready = self.ready
        age = now - self.eligible[ready[0]] if ready else None
        current = len(self.formation)
        wanted = self.controller.decide(now, Observation(len(ready), age, self.running), current)
        if wanted != current:
            self._scale(now, current, wanted)
        line = self.out.timeline
        line.t.append(now)
        line.ready.append(len(ready))
        line.running.append(self.running)
        line.oldest_age.append(age)
        line.dynos.append(wanted)

    def _scale(self, now: float, current: int, wanted: int) -> None:
        out = self.out
        out.writes += 1
        if wanted > current:
            out.flaps += int(now - self.last_down <= FLAP_SECONDS)
            if current == 0:
                out.wakes += 1
                out.cold_starts += int(now - self.zero_since <= QUICK_RESTART_SECONDS)
            for _ in range(wanted - current):
                dyno = _Dyno(now, up=False)
                self.formation.append(dyno)
                self._push(now + self.platform.boot_seconds, BOOTED, dyno)
            return
        self.last_down = now
        self.zero_since = now if wanted == 0 else INF
        leaving = self.formation[wanted:]
        del self.formation[wanted:]
        out.busy_scale_downs += int(any(d.jobs for d in leaving))
        gone = set(map(id, leaving))
        self.pool = [d for d in self.pool if id(d) not in gone]
        for dyno in reversed(leaving):  # the highest-numbered first
            dyno.stopping = True
            if dyno.jobs:
                self._push(now + self.platform.grace_seconds, KILL, dyno)
            else:
                self._exit(dyno, now)

    def _finish(self) -> Run:
        out, end, arrivals = self.out, self.trace.duration, self.trace.arrivals
        for dyno in (*self.formation, *self._stopping()):
            self._exit(dyno, end)
        for job, started in enumerate(self.start):
            if arrivals[job] > end:
                break
            if started < 0:
                out.unfinished += 1
                out.waits.append(end - arrivals[job])
            else:
                out.waits.append(started - arrivals[job])
        return out

    def _stopping(self) -> list[_Dyno]:
        return [e[3] for e in self.heap if e[3] is not None]
