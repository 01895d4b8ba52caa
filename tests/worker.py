"""A real Celery worker process, started against the test database and the real broker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """Return a DATABASE_URL for the test database this process is using."""
    cfg = connection.settings_dict
    if cfg["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{cfg['NAME']}"
    auth = cfg["USER"] or ""
    if cfg.get("PASSWORD"):
        auth += f":{cfg['PASSWORD']}"
    host = f"{cfg['HOST'] or '127.0.0.1'}:{cfg['PORT'] or 5432}"
    return f"postgres://{auth}@{host}/{cfg['NAME']}"


class Worker:
    """One `celery worker -B` process group that a test can start, kill and restart."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            DEBUG="1",
            DATABASE_URL=database_url(),
            CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
            STUDIO_VAR_DIR=str(settings.VAR_DIR),
            MEDIA_ROOT=str(settings.MEDIA_ROOT),
            STUDIO_JOB_STALE_AFTER_S="4",
            STUDIO_JOB_SWEEP_INTERVAL_S="1",
            STUDIO_JOB_HEARTBEAT_S="1",
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self) -> None:
        self.starts += 1
        log = open(self.tmp_path / f"worker-{self.starts}.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "studio", "worker", "-B",
                "-Q", "default,gpu", "--concurrency", "1", "--loglevel", "INFO",
                "--schedule", str(self.tmp_path / f"beat-{self.starts}"),
                "--hostname", f"test-{os.getpid()}-{self.starts}@%h",
            ],
            cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the whole process group: main process, pool child and beat, no clean-up."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        # Pool children and the embedded beat must not outlive the test (they hold DB sessions).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        time.sleep(0.2)

    def logs(self, tail: int | None = 3000) -> str:
        texts = [p.read_text(errors="replace") for p in sorted(self.tmp_path.glob("worker-*.log"))]
        return "\n".join(t[-tail:] if tail else t for t in texts)


def start_worker(tmp_path: Path) -> Worker:
    from studio.celery import app, ensure_broker_folder

    ensure_broker_folder()
    app.control.purge()  # messages left by earlier runs point at rows that no longer exist
    w = Worker(tmp_path)
    w.start()
    return w


def wait_for(
    predicate, timeout: float, what: str, worker: Worker | None = None, interval: float = 0.05
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    logs = worker.logs() if worker else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
