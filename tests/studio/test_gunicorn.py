"""The production web server: gunicorn with Studio's settings, serving the real API.

Started as operations.md says (``gunicorn -c python:studio.gunicorn_conf studio.wsgi``),
with DEBUG off, on the test database, then asked over HTTP for a token and a project list.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from tests.factories import PASSWORD, make_project, make_user
from tests.studio.test_run_studio import free_port
from tests.worker import database_url

ROOT = Path(__file__).resolve().parents[2]


def _call(url: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(data).encode() if data else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)  # noqa: S310
    except urllib.error.HTTPError:
        return True  # an answer all the same (401 without a token)
    except OSError:
        return False
    return True


@pytest.fixture
def gunicorn(transactional_db, settings, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DEBUG="0", SECRET_KEY="gunicorn-test-" + "x" * 40, ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0", DATABASE_URL=database_url(), STUDIO_VAR_DIR=str(settings.VAR_DIR),
        MEDIA_ROOT=str(settings.MEDIA_ROOT), STATIC_ROOT=str(tmp_path / "static"),
        WEB_CONCURRENCY="2", STUDIO_WEB_THREADS="2", STUDIO_BIND=f"127.0.0.1:{port}",
    )  # fmt: skip
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:studio.gunicorn_conf", "studio.wsgi"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{base}/api/v1/"):
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
            time.sleep(0.2)
        yield base, proc, tmp_path / "gunicorn.log"
    finally:  # stopped even when it never answered
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def test_gunicorn_serves_the_api_with_studios_settings(gunicorn):
    base, proc, log = gunicorn
    user = make_user("ops")
    # The server hashes as production does (the tests' fast MD5 hasher is theirs only).
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    user.save(update_fields=["password"])
    make_project(user, "Served by gunicorn")
    status, body = _call(f"{base}/api/v1/auth/token/", {"username": "ops", "password": PASSWORD})
    assert status == 200, body
    token = body["token"]
    for _ in range(5):  # several requests: workers and threads reuse their connections
        status, body = _call(f"{base}/api/v1/projects/", token=token)
        assert status == 200, body
        assert [p["name"] for p in body["results"]] == ["Served by gunicorn"]
    status, body = _call(f"{base}/api/v1/projects/")
    assert status == 401 and body["error"]["code"] == "not_authenticated"
    os.killpg(proc.pid, signal.SIGTERM)  # a process manager's stop: graceful, and quick
    assert proc.wait(timeout=30) == 0, log.read_text()
    assert "Booting worker" in log.read_text()
