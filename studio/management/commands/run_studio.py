"""Run the web server and a Celery worker (with the job sweeper) together, for one machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from studio.celery import ensure_broker_folder


class Command(BaseCommand):
    help = "Start a Celery worker (queues default and gpu, with beat) and the web server."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, addrport, concurrency, **options):
        ensure_broker_folder()
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "studio", "worker", "-B",
                "-Q", "default,gpu", "--concurrency", str(concurrency), "--loglevel", "INFO",
                "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
            env=os.environ.copy(),
        )  # fmt: skip
        host = addrport if ":" in addrport else f"127.0.0.1:{addrport}"
        self.stdout.write(
            self.style.SUCCESS(f"Studio is starting at http://{host}/ (worker pid {worker.pid})")
        )
        try:
            call_command("runserver", host, use_reloader=False)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
