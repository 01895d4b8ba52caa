"""The annotator loop under load: N annotators over HTTP against a real server, vs Label Studio.

Each annotator is its own user with its own API token and repeats next task -> create one
box -> submit on a queue of 2,000 generated images: with no think time (closed loop), and
at a person's pace, one request per second each (open loop). Reported: loops per second,
p50/p95 of each step, errors by status, double hand-outs (one image handed to two
annotators; leases are 30 minutes and nobody rejects, so each image goes to one person)
and, from the database afterwards, tasks submitted twice.

The database is the one ``DATABASE_URL`` names: SQLite (default) is served by runserver,
the web server ``make demo`` runs; PostgreSQL by gunicorn with Studio's settings
(``studio/gunicorn_conf.py``), in a database of the benchmark's own (``<name>_loop``).
The peer is Label Studio 1.23.2 (``scripts/peer-label-studio`` installs it in a venv of its
own) on the same database engine and the same server; its annotation is its submission,
so its loop is two requests. Without that venv the ratio is against the server's ceiling:
the same client asking the same server its cheapest API request (``GET /api/v1/projects/``
without a token, a 401).

Sizes: BENCH_ANNOTATORS (closed loop, 50), BENCH_OPEN_ANNOTATORS (100), BENCH_LOOP_RATE
(requests per second per annotator in the open loop, 1), BENCH_LOOP_IMAGES (2000),
BENCH_LOOP_SECONDS (longest run, 60). BENCH_LOOP_PEER=ceiling measures against the ceiling
even when Label Studio is installed (quicker: Label Studio's set-up takes minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dj_database_url
import psycopg
import pytest
import requests

from tests.benchmarks.loop_client import (
    ROOT,
    LabelStudioLoop,
    Run,
    Server,
    StudioLoop,
    free_port,
    run_loop,
)

pytestmark = pytest.mark.benchmark
ANNOTATORS = int(os.environ.get("BENCH_ANNOTATORS", 50))
OPEN_ANNOTATORS = int(os.environ.get("BENCH_OPEN_ANNOTATORS", 100))
PACE = float(os.environ.get("BENCH_LOOP_RATE", 1.0))
IMAGES = int(os.environ.get("BENCH_LOOP_IMAGES", 2000))
SECONDS = float(os.environ.get("BENCH_LOOP_SECONDS", 60))
PEER = ROOT / "var" / "peers" / "label-studio"
PEER_PYTHON = PEER / "bin" / "python"
DATABASE = os.environ.get("DATABASE_URL", "")
POSTGRES = DATABASE.startswith(("postgres://", "postgresql://"))
# gunicorn's worker count and threads, for Studio and the peer alike on PostgreSQL.
WORKERS, THREADS = 2 * (os.cpu_count() or 1) + 1, 4
LABEL_CONFIG = (
    '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
    '<Label value="object"/></RectangleLabels></View>'
)


def _json_line(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def _run(argv: list[str], env: dict, cwd: Path = ROOT) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


# -- databases: a template seeded once per session, a fresh copy per run -------------------


def _pg(url: str) -> dict:
    return dj_database_url.parse(url)


def _pg_admin(sql: str) -> None:
    cfg = _pg(DATABASE)
    with psycopg.connect(
        host=cfg["HOST"] or "127.0.0.1", port=cfg["PORT"] or 5432, user=cfg["USER"],
        password=cfg["PASSWORD"] or None, dbname="postgres", autocommit=True,
    ) as conn:  # fmt: skip
        conn.execute(sql)


def _pg_url(name: str) -> str:
    cfg = _pg(DATABASE)
    auth = cfg["USER"] + (f":{cfg['PASSWORD']}" if cfg["PASSWORD"] else "")
    return f"postgres://{auth}@{cfg['HOST'] or '127.0.0.1'}:{cfg['PORT'] or 5432}/{name}"


def _fresh_pg(name: str, template: str | None = None) -> str:
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def _copy_sqlite(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


class Studio:
    """Studio seeded once (template), then served from a fresh copy for each run."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.var = folder / "var"
        self.template = (
            _fresh_pg(f"{_pg(DATABASE)['NAME']}_loop_template")
            if POSTGRES
            else folder / "template.sqlite3"
        )
        env = self.env(self.template)
        annotators = max(ANNOTATORS, OPEN_ANNOTATORS)
        out = _run(
            [sys.executable, "-m", "tests.benchmarks.loop_seed", "seed",
             "--images", str(IMAGES), "--annotators", str(annotators)], env,
        )  # fmt: skip
        self.seeded = _json_line(out)

    def env(self, database) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            STUDIO_VAR_DIR=str(self.var), MEDIA_ROOT=str(self.var / "media"),
            DATABASE_URL=_pg_url(database) if POSTGRES else f"sqlite:///{database}",
            PYTHONUNBUFFERED="1",
        )  # fmt: skip
        if POSTGRES:  # production settings, as gunicorn serves them
            env.update(DEBUG="0", SECRET_KEY="loop-benchmark-" + "k" * 40,
                       ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="0")  # fmt: skip
        else:  # as `make demo` runs it
            env.update(DEBUG="1")
        return env

    @contextmanager
    def serve(self, name: str) -> Iterator[tuple[StudioLoop, Server, dict]]:
        if POSTGRES:
            database = _fresh_pg(f"{_pg(DATABASE)['NAME']}_loop", template=self.template)
        else:
            database = self.folder / f"{name}.sqlite3"
            _copy_sqlite(self.template, database)
        env = self.env(database)
        port = free_port()
        if POSTGRES:
            env.update(WEB_CONCURRENCY=str(WORKERS), STUDIO_WEB_THREADS=str(THREADS),
                       STUDIO_BIND=f"127.0.0.1:{port}")  # fmt: skip
            argv = [sys.executable, "-m", "gunicorn", "-c", "python:studio.gunicorn_conf",
                    "studio.wsgi"]  # fmt: skip
        else:
            argv = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        with Server(argv, env, port, self.folder / f"{name}-server.log") as server:
            yield StudioLoop(server.base, self.seeded), server, env

    def audit(self, env: dict) -> dict:
        return _json_line(_run([sys.executable, "-m", "tests.benchmarks.loop_seed", "audit"], env))


class LabelStudio:
    """Label Studio seeded once (template; its project and tasks made through its API),
    then served from a fresh copy for each run."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.data = folder / "label-studio"
        self.app = _ls_dir()
        self.template = (
            _fresh_pg(f"{_pg(DATABASE)['NAME']}_loop_ls_template")
            if POSTGRES
            else folder / "ls-template.sqlite3"
        )
        annotators = max(ANNOTATORS, OPEN_ANNOTATORS)
        script = str(ROOT / "tests" / "benchmarks" / "loop_peer_label_studio.py")
        out = _run([str(PEER_PYTHON), script, "seed", str(annotators)], self.env(self.template))
        self.seeded = _json_line(out)
        with self._server(self.template, "ls-seed") as server:
            lead = requests.Session()
            lead.headers["Authorization"] = f"Token {self.seeded['lead']}"
            body = {"title": "Annotator loop", "label_config": LABEL_CONFIG}
            r = lead.post(f"{server.base}/api/projects/", json=body, timeout=120)
            assert r.status_code == 201, r.text
            project = r.json()["id"]
            tasks = [{"image": f"/data/upload/loop/{i:05d}.jpg"} for i in range(IMAGES)]
            r = lead.post(f"{server.base}/api/projects/{project}/import", json=tasks, timeout=900)
            assert r.status_code == 201 and r.json()["task_count"] == IMAGES, r.text
        self.seeded["project"] = project

    def env(self, database) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTEST", "DATABASE_URL", "DJANGO_", "DEBUG", "STUDIO_"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="core.settings.label_studio",
            LABEL_STUDIO_BASE_DATA_DIR=str(self.data), LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
            SENTRY_DSN="", FRONTEND_SENTRY_DSN="", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
        )  # fmt: skip
        if POSTGRES:
            cfg = _pg(DATABASE)
            env.update(
                DJANGO_DB="postgresql", POSTGRE_NAME=str(database), POSTGRE_USER=cfg["USER"],
                POSTGRE_PASSWORD=cfg["PASSWORD"] or "", POSTGRE_HOST=cfg["HOST"] or "127.0.0.1",
                POSTGRE_PORT=str(cfg["PORT"] or 5432),
            )  # fmt: skip
        else:
            env.update(DJANGO_DB="sqlite", DATABASE_NAME=str(database))
        return env

    def _server(self, database, name: str) -> Server:
        port = free_port()
        if POSTGRES:
            argv = [str(PEER / "bin" / "gunicorn"), "core.wsgi:application", "-b", f"127.0.0.1:{port}",
                    "-w", str(WORKERS), "--threads", str(THREADS), "-k", "gthread"]  # fmt: skip
        else:  # what `label-studio start` runs
            argv = [str(PEER_PYTHON), "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
        log = self.folder / f"{name}-server.log"
        return Server(argv, self.env(database), port, log, cwd=self.app)

    @contextmanager
    def serve(self, name: str) -> Iterator[tuple[LabelStudioLoop, Server, dict]]:
        if POSTGRES:
            database = _fresh_pg(f"{_pg(DATABASE)['NAME']}_loop_ls", template=self.template)
        else:
            database = self.folder / f"ls-{name}.sqlite3"
            _copy_sqlite(self.template, database)
        with self._server(database, f"ls-{name}") as server:
            yield LabelStudioLoop(server.base, self.seeded), server, self.env(database)

    def audit(self, env: dict) -> dict:
        script = str(ROOT / "tests" / "benchmarks" / "loop_peer_label_studio.py")
        out = _run([str(PEER_PYTHON), script, "audit", str(self.seeded["project"])], env, self.app)
        return _json_line(out)


def _ls_dir() -> Path:
    out = _run([str(PEER_PYTHON), "-c", "import label_studio; print(label_studio.__file__)"], {})
    return Path(out.strip()).parent


class Ceiling:
    """The server's cheapest request, by the same client: what a loop is measured against
    when Label Studio is not installed."""

    name = "server ceiling (GET /api/v1/projects/ without a token, 401)"
    steps = ("ping",)

    def __init__(self, base: str):
        self.url = f"{base}/api/v1/projects/"

    def session(self, token: str) -> requests.Session:
        return requests.Session()

    def request(self, s: requests.Session, step: str, task) -> requests.Response:
        return s.get(self.url, timeout=120)

    def task(self, response):
        return {"id": 0, "image": 0}

    @staticmethod
    def ok(code: int) -> bool:
        return code == 401


# -- the runs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def systems(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loop")
    studio = Studio(folder)
    use_peer = PEER_PYTHON.exists() and os.environ.get("BENCH_LOOP_PEER") != "ceiling"
    peer = LabelStudio(folder) if use_peer else None
    yield studio, peer
    if POSTGRES:
        name = _pg(DATABASE)["NAME"]
        for suffix in ("_loop", "_loop_template", "_loop_ls", "_loop_ls_template"):
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}{suffix}" WITH (FORCE)')


def _measure(system, name: str, annotators: int, pace: float | None) -> tuple[Run, dict]:
    with system.serve(name) as (loop, server, env):
        run = run_loop(loop, system.seeded["tokens"][:annotators], SECONDS, pace, server)
    return run, system.audit(env)


def _ceiling(studio: Studio, annotators: int) -> Run:
    """The server's capacity: the cheapest request with no think time, whatever the pace."""
    with studio.serve("ceiling") as (_, server, _env):
        return run_loop(Ceiling(server.base), ["-"] * annotators, min(SECONDS, 20), None, server)


def _report(
    title: str, studio: tuple[Run, dict], peer, steps_studio, steps_peer, paced: bool
) -> None:
    run, audit = studio
    engine = "PostgreSQL + gunicorn" if POSTGRES else "SQLite + runserver"
    print(f"\n{title} on {engine}, {IMAGES} images")
    print(f"  Studio: {run.summary(steps_studio)}; late sends: {run.late}")
    print(f"  Studio database: {audit}")
    if isinstance(peer, tuple):
        prun, paudit = peer
        print(f"  Label Studio 1.23.2: {prun.summary(steps_peer)}; late sends: {prun.late}")
        print(f"  Label Studio database: {paudit}")
        for a, b in (("next", "next"), ("create", "create")):
            sa, sb = run.percentile(a, 95), prun.percentile(b, 95)
            print(f"  p95 {a}: Studio {1000 * sa:.0f} ms, Label Studio {1000 * sb:.0f} ms")
        if paced:  # the pace sets the throughput: compare the waits
            worst = max(run.percentile(step, 95) for step in steps_studio)
            peer_worst = max(prun.percentile(step, 95) for step in steps_peer)
            print(f"  Label Studio / Studio slowest-step p95: {peer_worst / worst:.2f}x")
        else:
            ratio = run.loops_per_s / prun.loops_per_s if prun.loops_per_s else float("inf")
            print(f"  Studio / Label Studio loops/s: {ratio:.2f}x")
    else:
        ceiling = peer.loops_per_s  # one request per "loop"
        print(f"  {Ceiling.name}: {ceiling:.1f} requests/s")
        print(f"  Studio requests/s / ceiling: {3 * run.loops_per_s / ceiling:.2f}")


def _check(run: Run, audit: dict) -> None:
    """What must hold whatever the speed: no 5xx, nobody shares a task, nothing counted twice."""
    assert run.server_errors() == 0, run.errors
    assert run.double_handouts() == 0
    assert audit["tasks_submitted_twice"] == 0 and audit["images_with_two_annotators"] == 0
    assert audit["submissions"] == run.loops  # each loop the client saw is one submission


def test_annotator_loop_closed(systems, capsys):
    studio, peer = systems
    mine = _measure(studio, "closed", ANNOTATORS, None)
    other = _measure(peer, "closed", ANNOTATORS, None) if peer else _ceiling(studio, ANNOTATORS)
    with capsys.disabled():
        _report(f"Closed loop, {ANNOTATORS} annotators, no think time", mine, other,
                StudioLoop.steps, LabelStudioLoop.steps, paced=False)  # fmt: skip
    _check(*mine)


def test_annotator_loop_open(systems, capsys):
    studio, peer = systems
    mine = _measure(studio, "open", OPEN_ANNOTATORS, PACE)
    other = (
        _measure(peer, "open", OPEN_ANNOTATORS, PACE) if peer else _ceiling(studio, OPEN_ANNOTATORS)
    )
    with capsys.disabled():
        _report(f"Open loop, {OPEN_ANNOTATORS} annotators at {PACE:g} request/s each", mine,
                other, StudioLoop.steps, LabelStudioLoop.steps, paced=True)  # fmt: skip
        worst = max(mine[0].percentile(step, 95) for step in StudioLoop.steps)
        print(f"  Studio's slowest step p95: {1000 * worst:.0f} ms (goal on PostgreSQL: 150 ms)")
    _check(*mine)
