"""`make run`: set up and run Ledgerbridge on this machine, then stop everything on Ctrl-C.

Starts a private Redis on loopback (unless REDIS_URL is set), migrates both databases, creates
the demo users, seeds the sandbox's demo firm, then runs the sandbox systems on
http://127.0.0.1:8100, one full sync cycle, a Celery worker, Celery beat and the web server
(waitress) on http://127.0.0.1:8000. If any of them dies, everything is stopped and the exit
code is non-zero.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from services import start_redis, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PORT = int(os.environ.get("PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8100"))
VAR = Path(os.environ.get("LEDGERBRIDGE_VAR_DIR", ROOT / "var"))


class Supervisor:
    """Starts processes in their own process groups and stops every one of them."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.processes: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str]) -> None:
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env, start_new_session=True)
        self.processes.append((name, process))

    def first_exited(self) -> tuple[str, int] | None:
        for name, process in self.processes:
            if process.poll() is not None:
                return name, process.returncode
        return None

    def stop_all(self, timeout: float = 20.0) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        for _, process in self.processes:
            # Leftovers (a prefork child, a stuck server) go with their whole group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def main() -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    redis = None
    if not env.get("REDIS_URL"):
        redis = start_redis(VAR / "redis")
        env["REDIS_URL"] = redis.url
    supervisor = Supervisor(env)
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "migrate", "--noinput", "-v", "0", "--database", "sandbox")
        manage(env, "demo_users")
        # The emulated vendor systems, reseeded with the same demo firm on every start.
        manage(
            env,
            "sandbox",
            "seed",
            "--scale",
            "demo",
            "--seed",
            "42",
            "--reset",
            "--manifest",
            str(VAR / "sandbox_manifest.json"),
        )
        # One connection per sandbox system (beat schedules a cycle for each) and the first
        # mapping a mapping admin would publish, so the cycles post real time.
        manage(env, "sandbox", "connect", "--base-url", f"http://127.0.0.1:{SANDBOX_PORT}")
        supervisor.start(
            "sandbox",
            [sys.executable, "manage.py", "sandbox", "serve", "--port", str(SANDBOX_PORT)],
        )
        wait_for_port(SANDBOX_PORT, supervisor.processes[-1][1], "sandbox")
        # One full cycle first, every connection in dependency order (legal entities before
        # the workers that belong to them, projects and workers before their time): beat's
        # per-connection cycles, which run side by side, then start from complete master
        # data, and approvals pushed by webhook find their project, task and worker.
        manage(env, "sync", "cycle")
        supervisor.start(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                "portal",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--queues",
                "celery",
                "--hostname",
                "worker@%h",
            ],
        )
        # Approval events on a worker of their own: a long cycle never delays a webhook's posting.
        supervisor.start(
            "events",
            [
                str(BIN / "celery"),
                "-A",
                "portal",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "1",
                "--queues",
                "events",
                "--hostname",
                "events@%h",
            ],
        )
        supervisor.start(
            "beat",
            [
                str(BIN / "celery"),
                "-A",
                "portal",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(VAR / "celerybeat-schedule"),
            ],
        )
        supervisor.start(
            "web",
            [
                str(BIN / "waitress-serve"),
                f"--listen=127.0.0.1:{PORT}",
                "--threads=8",
                "portal.wsgi:application",
            ],
        )
        # Approvals in the PSA are pushed here as signed webhooks and posted within a second,
        # billing's invoice and payment events are pushed to the inbox; the beat's cycles still
        # pull whatever a webhook missed.
        manage(env, "sync", "webhooks", "--portal-url", f"http://127.0.0.1:{PORT}", "--wait", "30")
        print(f"\nLedgerbridge is up: http://127.0.0.1:{PORT}/  (Redis {env['REDIS_URL']})")
        print(
            f"Sandbox systems: http://127.0.0.1:{SANDBOX_PORT}/  "
            "(`python manage.py sandbox credentials` prints their logins)"
        )
        print("Sign in with a demo login above. Ctrl-C stops everything.\n", flush=True)
        while not stopping:
            exited = supervisor.first_exited()
            if exited:
                print(f"{exited[0]} exited with code {exited[1]}: stopping.", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        print("Stopping…", flush=True)
        supervisor.stop_all()
        if redis:
            redis.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
