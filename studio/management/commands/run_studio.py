"""Run the web server and a Celery worker (with the job sweeper) together, for one machine.

The worker is this command's child and must never outlive it: a process manager stops
services with SIGTERM (systemd, supervisord, docker), a terminal closing sends SIGHUP and
Ctrl+C sends SIGINT, and each of them stops the server and then the worker's whole process
group (its pool children and the embedded beat). If this process dies without a chance to
clean up (SIGKILL, a crash), the kernel sends the worker SIGQUIT — Celery's cold shutdown —
through ``PR_SET_PDEATHSIG``; the task it was running is delivered again (late acks) and
resumes from its job's checkpoint.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from types import FrameType

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from studio.celery import ensure_broker_folder

PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# A warm shutdown lets the running task finish its step; past this the group is killed.
WORKER_GRACE_S = 20


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to send this (forked, not yet exec'd) child SIGQUIT when its parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGQUIT)
    # The parent may have died between fork and prctl: then nobody would signal us.
    if os.getppid() != parent_pid:
        os._exit(1)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # runserver turns KeyboardInterrupt into a clean exit, which runs handle()'s finally.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_worker(worker: subprocess.Popen, grace_s: float = WORKER_GRACE_S) -> None:
    """Warm-stop the worker, then kill whatever is left of its process group."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=grace_s)
    # Pool children and beat share the worker's process group (its own session).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


class Command(BaseCommand):
    help = "Start a Celery worker (queues default and gpu, with beat) and the web server."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, addrport, concurrency, **options):
        ensure_broker_folder()
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        parent = os.getpid()
        # Handlers first, so a signal that arrives while the worker starts still stops it.
        previous = {sig: signal.signal(sig, _raise_interrupt) for sig in STOP_SIGNALS}
        worker = None
        try:
            worker = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "studio", "worker", "-B",
                    "-Q", "default,gpu", "--concurrency", str(concurrency), "--loglevel", "INFO",
                    "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
                ],
                env=os.environ.copy(),
                # Its own process group: stopped as a whole, and a terminal's Ctrl+C reaches
                # only this command, which then stops the worker in order.
                start_new_session=True,
                preexec_fn=lambda: _die_with_parent(parent),  # noqa: PLW1509 - no threads yet
            )  # fmt: skip
            host = addrport if ":" in addrport else f"127.0.0.1:{addrport}"
            self.stdout.write(
                self.style.SUCCESS(
                    f"Studio is starting at http://{host}/ (worker pid {worker.pid})"
                )
            )
            self.stdout.flush()
            call_command("runserver", host, use_reloader=False)
        finally:
            # A second signal during the clean-up must not cut it short.
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
            if worker is not None:
                stop_worker(worker)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
