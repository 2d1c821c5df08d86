"""Benchmark `manage.py sandbox seed`: wall time, rows/s and the seeding process's peak RSS.

    python bench/sandbox_seed.py                 # --scale large on the configured databases
    python bench/sandbox_seed.py --scale small   # a quick run
    python bench/sandbox_seed.py --sqlite        # on a throwaway SQLite sandbox instead

`make bench` starts a private PostgreSQL, sets DATABASE_URL / SANDBOX_DATABASE_URL and migrates
before it runs this. Without SANDBOX_DATABASE_URL (or with --sqlite) a throwaway SQLite sandbox
in a temporary directory is used, so that the developer's own sandbox is never reset.
The seed runs as a child process (`--reset`, manifest in a temporary directory); its peak RSS
comes from resource.getrusage(RUSAGE_CHILDREN).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _vendor(url: str) -> str:
    return "postgresql" if url.startswith(("postgres://", "postgresql://")) else "sqlite"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large", help="demo, small, large or a number")
    parser.add_argument("--seed", default="42")
    parser.add_argument("--sqlite", action="store_true", help="use a throwaway SQLite sandbox")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="ledgerbridge-seed-bench-"))
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(ROOT))
    try:
        if args.sqlite or not env.get("SANDBOX_DATABASE_URL"):
            env["SANDBOX_DATABASE_URL"] = f"sqlite:///{workdir / 'sandbox.sqlite3'}"
            env.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'ledgerbridge.sqlite3'}")
            env["LEDGERBRIDGE_VAR_DIR"] = str(workdir / "var")
            subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
                [
                    sys.executable,
                    "manage.py",
                    "migrate",
                    "--database",
                    "sandbox",
                    "--noinput",
                    "-v",
                    "0",
                ],
                cwd=ROOT,
                env=env,
                check=True,
            )
        manifest = workdir / "manifest.json"
        started = time.perf_counter()
        completed = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
            [
                sys.executable,
                "manage.py",
                "sandbox",
                "seed",
                "--scale",
                args.scale,
                "--seed",
                args.seed,
                "--reset",
                "--manifest",
                str(manifest),
            ],
            cwd=ROOT,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - started
        if completed.returncode != 0:
            print(f"seed failed with exit code {completed.returncode}", file=sys.stderr)
            return completed.returncode
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
        written = json.loads(manifest.read_text())
        rows = sum(count for types in written["records"].values() for count in types.values())
        faults = sum(kind["entries"] for kind in written["fault_counts"].values())
        header = (
            "database",
            "scale",
            "time entries",
            "records",
            "faults",
            "seconds",
            "rows/s",
            "peak RSS",
        )
        values = (
            _vendor(env["SANDBOX_DATABASE_URL"]),
            args.scale,
            f"{written['time_entries']:,}",
            f"{rows:,}",
            f"{faults:,}",
            f"{seconds:.1f}",
            f"{rows / seconds:,.0f}",
            f"{peak_kib / 1024:,.0f} MiB",
        )
        print()
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(" --- " for _ in header) + "|")
        print("| " + " | ".join(values) + " |")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
