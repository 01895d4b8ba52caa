"""Page cost at scale: the same pages at 10,000 and at 1,000,000 images, on PostgreSQL.

Two databases (``<BENCH_SCALE_DATABASE_URL>_<size>``) each hold one project built by
``scale_data.py``: the images with metadata, the dataset's working set, three versions,
quality metrics, near-duplicate groups, a queue over the latest version (5 % done, 1 %
waiting for review) and 40 jobs. A database is built once and kept (the first run at a
million images takes several minutes); ``BENCH_SCALE_REBUILD=1`` builds it again.

Two real servers (``manage.py runserver``, DEBUG off, persistent connections), one per
database, answer the same requests in turn: each page and API list is requested
``BENCH_SCALE_REQUESTS`` times from each, alternating, after two warm-up requests, so
both sizes see the same machine noise. "Next task" is measured with a different
annotator on each request (a first lease each time). The figure is the ratio of the
large project's p95 to the small one's: the same code at both sizes, in the same run
(goal ≤ 1.5: a page costs the same whatever the dataset's size).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

SMALL = int(os.environ.get("BENCH_SCALE_SMALL", 10_000))
LARGE = int(os.environ.get("BENCH_SCALE_LARGE", 1_000_000))
REQUESTS = int(os.environ.get("BENCH_SCALE_REQUESTS", 20))
BASE_URL = os.environ.get(
    "BENCH_SCALE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/studio_scale_bench"
)
PORT = int(os.environ.get("BENCH_SCALE_PORT", 8131))
ROOT = Path(__file__).resolve().parents[2]
GOAL = 1.5

# (name, method, path, auth): paths are formatted with what scale_data.prepare() prints.
D = "/p/{slug}/datasets/{dataset}/"
API = "/api/v1/projects/{slug}/"
PAGES = [
    ("project page", "GET", "/p/{slug}/", "session"),
    ("dataset page (working set)", "GET", D, "session"),
    ("dataset page (a version)", "GET", D + "?version={version}", "session"),
    ("dataset page (version, split)", "GET", D + "?version={version}&split=val", "session"),
    ("dataset page (metadata filter)", "GET", D + "?version={version}&meta.camera=cam7", "session"),
    ("dataset page (page 3)", "GET", "{page3}", "session"),
    ("curate page", "GET", D + "curate/", "session"),
    ("duplicates page", "GET", D + "duplicates/", "session"),
    ("exchange page", "GET", D + "exchange/", "session"),
    ("queues page", "GET", "/p/{slug}/queues/", "session"),
    ("review page", "GET", "/p/{slug}/review/", "session"),
    ("API datasets", "GET", API + "datasets/", "token"),
    ("API dataset", "GET", API + "datasets/{dataset}/", "token"),
    ("API versions", "GET", API + "datasets/{dataset}/versions/", "token"),
    ("API images (project)", "GET", API + "images/", "token"),
    ("API images (version)", "GET", API + "images/?dataset={dataset}&version={version}", "token"),
    ("API images (metadata)", "GET", API + "images/?meta.lighting=night", "token"),
    ("API images (next link)", "GET", "{api_next}", "token"),
    ("API duplicates", "GET", API + "datasets/{dataset}/versions/{version}/duplicates/", "token"),
    ("API queues", "GET", API + "queues/", "token"),
    ("API jobs", "GET", "/api/v1/jobs/?project={slug}", "token"),
    ("API next task", "POST", API + "queues/{queue}/next/", "annotator"),
]


def _env(size: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"{BASE_URL}_{size}",
        "DATABASE_CONN_MAX_AGE": "60",
        "DEBUG": "0",
        "SECRET_KEY": "bench-page-scale-not-a-secret",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on the loopback
    }


def _admin_sql(statement: str) -> None:
    import psycopg

    admin = BASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(statement)


def _prepare(size: int) -> dict:
    name = f"{BASE_URL.rsplit('/', 1)[1]}_{size}"
    if os.environ.get("BENCH_SCALE_REBUILD") == "1":
        _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    try:
        _admin_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - already there: reuse it
        if "already exists" not in str(exc):
            raise
    env = _env(size)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    started = time.perf_counter()
    out = subprocess.run(
        [
            *manage,
            "shell",
            "-c",
            f"from tests.benchmarks.scale_data import prepare; prepare({size})",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"building {size:,} images failed:\n{out.stderr[-3000:]}")
    print(f"{size:>9,} images: ready in {time.perf_counter() - started:.0f} s")
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextmanager
def _server(size: int, port: int):
    # The server's log goes to a file: a pipe nobody reads would fill and stall it.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}",
             "--noreload", "--nothreading", "--skip-checks"],
            env=_env(size), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/accounts/login/")
                    conn.getresponse().read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(log.read().decode()[-2000:]) from None
                    time.sleep(0.3)
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _request(port: int, method: str, path: str, headers: dict) -> tuple[float, int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start = time.perf_counter()
    conn.request(method, path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed, response.status, len(body)


def _headers(info: dict, auth: str, n: int) -> dict:
    if auth == "session":
        return {"Cookie": f"sessionid={info['session']}"}
    if auth == "token":
        return {"Authorization": f"Token {info['token']}"}
    return {"Authorization": f"Token {info['annotator_tokens'][n]}", "Content-Length": "0"}


def _links(port: int, info: dict) -> None:
    """Add the paths a client reaches by following links: page 3 of the grid, the API's next."""
    path = D.format(**info) + f"?version={info['version']}"
    for _ in range(2):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", path, headers=_headers(info, "session", 0))
        html = conn.getresponse().read().decode()
        marker = 'rel="next" href="'
        path = html[html.index(marker) + len(marker) :].split('"', 1)[0].replace("&amp;", "&")
        if path.startswith("?"):
            path = D.format(**info) + path
    info["page3"] = path
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", API.format(**info) + "images/", headers=_headers(info, "token", 0))
    nxt = json.loads(conn.getresponse().read())["next"]
    info["api_next"] = nxt[nxt.index("/api/") :]


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def test_page_cost_at_scale():
    sizes = (SMALL, LARGE)
    infos = {size: _prepare(size) for size in sizes}
    ports = {SMALL: PORT, LARGE: PORT + 1}
    with _server(SMALL, ports[SMALL]), _server(LARGE, ports[LARGE]):
        for size in sizes:
            _links(ports[size], infos[size])
        rows, failures = [], []
        for name, method, template, auth in PAGES:
            times = {size: [] for size in sizes}
            sizes_bytes = {}
            for n in range(REQUESTS + 2):
                for size in sizes if n % 2 == 0 else reversed(sizes):
                    info = infos[size]
                    elapsed, code, length = _request(
                        ports[size], method, template.format(**info), _headers(info, auth, n)
                    )
                    if code != 200:
                        failures.append(f"{name} at {size}: HTTP {code}")
                    if n >= 2:  # two warm-up rounds
                        times[size].append(elapsed)
                    sizes_bytes[size] = length
            small, large = (_pct(times[s], 95) for s in sizes)
            rows.append((name, _pct(times[SMALL], 50), small, _pct(times[LARGE], 50), large,
                         large / small, sizes_bytes[SMALL], sizes_bytes[LARGE]))  # fmt: skip
    print(f"\nPage cost, {SMALL:,} vs {LARGE:,} images (PostgreSQL, {REQUESTS} requests each)")
    print(f"{'page':<32} {'p50 small':>10} {'p95 small':>10} {'p50 large':>10} "
          f"{'p95 large':>10} {'ratio':>6} {'KB small':>9} {'KB large':>9}")  # fmt: skip
    for name, p50s, p95s, p50l, p95l, ratio, bs, bl in rows:
        flag = "" if ratio <= GOAL else "  > goal"
        print(f"{name:<32} {p50s:>8.1f}ms {p95s:>8.1f}ms {p50l:>8.1f}ms {p95l:>8.1f}ms "
              f"{ratio:>6.2f} {bs / 1024:>9.1f} {bl / 1024:>9.1f}{flag}")  # fmt: skip
    print(f"worst p95 ratio: {max(r[5] for r in rows):.2f} (goal <= {GOAL})")
    assert not failures, failures
