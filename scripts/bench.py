"""`make bench`: start a private PostgreSQL and Redis, migrate, run every benchmark in bench/.

`make bench ARGS="sandbox_seed --scale small"` runs one benchmark with its own arguments.
Benchmarks print their figures; record them in bench/README.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from services import create_database, start_postgres, start_redis

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    if argv:
        runs = [(ROOT / "bench" / f"{argv[0].removesuffix('.py')}.py", argv[1:])]
    else:
        runs = [(path, []) for path in sorted((ROOT / "bench").glob("*.py"))]
    workdir = Path(tempfile.mkdtemp(prefix="ledgerbridge-bench-"))
    workdir.chmod(0o755)  # PostgreSQL runs as `postgres` when we are root: it must get in.
    services = []
    try:
        # Sized like a production server's cache (a quarter of this 24 GB machine would be
        # 6 GB): a 1,000,000-entry run writes ~2 GB, which 256 MB (the tests' size) would
        # turn into buffer evictions the benchmark would then be measuring.
        postgres = start_postgres(workdir / "postgres", shared_buffers="2GB")
        services.append(postgres)
        redis = start_redis(workdir / "redis")
        services.append(redis)
        env = dict(os.environ)
        env.update(
            DATABASE_URL=create_database(postgres.url, "ledgerbridge"),
            SANDBOX_DATABASE_URL=create_database(postgres.url, "sandbox"),
            REDIS_URL=redis.url,
            LEDGERBRIDGE_VAR_DIR=str(workdir / "var"),
            PYTHONPATH=str(ROOT),
        )
        for database in ("default", "sandbox"):
            subprocess.run(
                [
                    sys.executable,
                    "manage.py",
                    "migrate",
                    "--noinput",
                    "-v",
                    "0",
                    "--database",
                    database,
                ],
                cwd=ROOT,
                env=env,
                check=True,
            )
        failed = 0
        for script, args in runs:
            print(f"\n=== {script.name} {' '.join(args)}", flush=True)
            code = subprocess.call([sys.executable, str(script), *args], cwd=ROOT, env=env)
            failed += code != 0
        return 1 if failed else 0
    finally:
        for service in reversed(services):
            service.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
