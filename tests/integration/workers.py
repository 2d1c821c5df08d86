"""Real Celery worker processes for integration tests: start, find their pool, SIGKILL, stop.

Linux only (/proc): the integration tests run on the PostgreSQL and Redis `make test` starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def wait_for(
    condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll `condition` until it holds; fail the test saying `what` did not happen in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(interval)


def process_children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc), [] if it is gone."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(item) for item in text.split()]


def connected_to_port(pid: int, port: int) -> bool:
    """Whether `pid` holds an established TCP connection to 127.0.0.1:`port` (Linux /proc).

    A pool process talking to the sandbox is in the middle of a delivery batch: the connector
    is opened per batch and closed at its end.
    """
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    wanted = f"0100007F:{port:04X}"
    for line in table:
        fields = line.split()
        # fields: sl, local, remote, state, queues, tr, retrnsmt, uid, timeout, inode
        if fields[2] == wanted and fields[3] == "01" and fields[9] in inodes:
            return True
    return False


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    killed: bool = False  # by the test, on purpose

    def alive(self) -> bool:
        return self.process.poll() is None

    def pool(self) -> list[int]:
        return process_children(self.process.pid)


@dataclass
class CeleryWorkers:
    """Prefork Celery workers on the test databases; killed and restarted by the test."""

    env: dict[str, str]
    concurrency: int
    workers: list[Worker] = field(default_factory=list)
    started: int = 0

    def start(self) -> Worker:
        self.started += 1
        name = f"reliability-{self.started}-{os.getpid()}"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--loglevel",
                "ERROR",
                "--pool",
                "prefork",
                "--concurrency",
                str(self.concurrency),
                "--queues",
                "celery,events",
                "--hostname",
                f"{name}@%h",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
        )
        worker = Worker(name=name, process=process)
        self.workers.append(worker)
        return worker

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.alive()]

    def check(self) -> None:
        """Fail the test if a worker the test did not kill has exited (a crash at start-up, a
        bad setting): nothing would drain the queue."""
        for worker in self.workers:
            if not worker.killed and not worker.alive():
                pytest.fail(
                    f"Celery worker {worker.name} exited with code "
                    f"{worker.process.returncode}; see its output above."
                )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every worker has its whole pool of child processes."""

        def ready() -> bool:
            self.check()
            return all(len(w.pool()) >= self.concurrency for w in self.live())

        wait_for(ready, timeout=timeout, what="the Celery workers' pools starting")

    def kill_worker(self, worker: Worker) -> int:
        """SIGKILL a whole worker: its main process and its pool (one process group). Returns
        how many processes were killed."""
        victims = 1 + len(worker.pool())
        worker.killed = True
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(10)
        return victims

    def stop(self) -> None:
        for worker in self.live():
            worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(20)
            # Whatever is left of its group (pool processes orphaned by a kill) goes too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait()
