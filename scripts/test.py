"""`make test`: start a private PostgreSQL and Redis, run the whole pytest suite on them, stop them.

Arguments are passed to pytest (`make test ARGS="-k history"`). Exits with pytest's code; a run
that collects no test fails too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from services import create_database, start_postgres, start_redis

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="ledgerbridge-test-"))
    workdir.chmod(0o755)  # PostgreSQL runs as `postgres` when we are root: it must get in.
    services = []
    try:
        postgres = start_postgres(workdir / "postgres")
        services.append(postgres)
        redis = start_redis(workdir / "redis")
        services.append(redis)
        env = dict(os.environ)
        env.update(
            DATABASE_URL=create_database(postgres.url, "ledgerbridge"),
            SANDBOX_DATABASE_URL=create_database(postgres.url, "sandbox"),
            REDIS_URL=redis.url,
            LEDGERBRIDGE_VAR_DIR=str(workdir / "var"),
            LEDGERBRIDGE_TEST_SERVICES="1",
        )
        print(f"PostgreSQL at {postgres.url}, Redis at {redis.url}", flush=True)
        code = subprocess.call([sys.executable, "-m", "pytest", *argv], cwd=ROOT, env=env)
        if code == 5:
            print("pytest collected no test: that is a failure here.", file=sys.stderr)
            return 1
        return code
    finally:
        for service in reversed(services):
            service.stop()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
