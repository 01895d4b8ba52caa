"""The README's first command from a clean state, and ``run_studio`` never orphaning its worker.

These drive ``manage.py`` as a new user's shell would: a var folder that does not exist
yet, the embedded defaults (SQLite, the file-backed broker), a real server and a real
Celery worker, stopped the ways process managers and terminals stop them.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.worker


def clean_env(var_dir: Path) -> dict[str, str]:
    """Return the environment of a new user: embedded defaults under ``var_dir``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("PYTEST", "DATABASE_URL", "CELERY_", "MEDIA_ROOT", "STATIC_ROOT", "STUDIO_")
        )
    }
    env.update(DEBUG="1", STUDIO_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    return env


def manage(var_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean_env(var_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_processes() -> dict[int, int]:
    """Return {pid: parent pid} of every live (not zombie) process."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The fields after the command name (which may hold spaces): state, ppid, ...
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    return parents


def with_descendants(pid: int) -> set[int]:
    """Return ``pid`` and every live process below it (pool children, beat)."""
    parents = live_processes()
    found, frontier = set(), {pid} & parents.keys()
    while frontier:
        found |= frontier
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
    return found


def still_alive(pids: set[int]) -> set[int]:
    return pids & live_processes().keys()


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def sign_in(base: str, username: str, password: str) -> str:
    """Sign in through the login form as a browser would; return the page landed on."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{base}/accounts/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": username, "password": password}
    ).encode()
    request = urllib.request.Request(
        f"{base}/accounts/login/", data=body, headers={"Referer": f"{base}/accounts/login/"}
    )
    with opener.open(request, timeout=10) as response:
        return response.geturl()


@pytest.fixture(scope="module")
def seeded_var(tmp_path_factory) -> Path:
    """A var folder that did not exist, migrated and seeded by the README's own commands."""
    var_dir = tmp_path_factory.mktemp("fresh") / "not" / "yet" / "var"
    assert not var_dir.exists()
    migrated = manage(var_dir, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    seeded = manage(var_dir, "seed_demo", "--scenes", "2")
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    assert "demo project" in seeded.stdout
    return var_dir


class Studio:
    """``manage.py run_studio`` on a free port, with its log and its worker's process group."""

    def __init__(self, var_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_studio", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=clean_env(var_dir),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.worker_pid = wait_until(self._worker_pid, 60, "run_studio to start its worker")

    def _worker_pid(self) -> int | None:
        match = re.search(r"worker pid (\d+)", self.log.read_text(errors="replace"))
        return int(match.group(1)) if match else None

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/accounts/login/", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def worker_ready(self) -> bool:
        return " ready." in self.log.read_text(errors="replace")

    def worker_processes(self) -> set[int]:
        """Return the worker's processes once it is ready: main, pool children and beat."""
        wait_until(self.worker_ready, 60, "the worker to be ready")
        # The pool children and beat are forked just before "ready" is logged.

        def complete() -> set[int] | None:
            processes = with_descendants(self.worker_pid)
            return processes if len(processes) >= 3 else None

        return wait_until(complete, 30, "the worker's pool and beat processes")

    def close(self) -> None:
        """Leave nothing running whatever the test did (the assertions came before)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        for pid in still_alive(with_descendants(self.worker_pid)):
            os.kill(pid, signal.SIGKILL)


def test_a_fresh_var_folder_migrates_seeds_and_the_demo_user_signs_in(seeded_var, tmp_path):
    studio = Studio(seeded_var, tmp_path / "studio.log")
    try:
        wait_until(studio.answers, 60, "the server to answer")
        landed = sign_in(studio.base, "demo", "demo-studio")
        assert urllib.parse.urlparse(landed).path == "/"
        assert (seeded_var / "studio.sqlite3").is_file()
    finally:
        studio.close()


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
def test_a_stop_signal_stops_the_server_and_its_whole_worker(seeded_var, tmp_path, signum):
    studio = Studio(seeded_var, tmp_path / "studio.log")
    try:
        wait_until(studio.answers, 60, "the server to answer")
        worker = studio.worker_processes()
        studio.proc.send_signal(signum)
        studio.proc.wait(timeout=60)
        assert still_alive(worker) == set(), studio.log.read_text()[-3000:]
        assert not studio.answers()
    finally:
        studio.close()


def test_a_worker_whose_parent_is_killed_does_not_live_on(seeded_var, tmp_path):
    studio = Studio(seeded_var, tmp_path / "studio.log")
    try:
        worker = studio.worker_processes()
        studio.proc.kill()  # SIGKILL: run_studio gets no chance to clean up
        studio.proc.wait(timeout=10)
        wait_until(lambda: not still_alive(worker), 60, "the orphaned worker to exit")
    finally:
        studio.close()
