"""The annotator loop over HTTP: servers in subprocesses, annotators on threads, the figures.

An annotator is a thread with its own HTTP session and API token. It repeats next task ->
create one box -> submit (Label Studio: next task -> create the annotation, which is its
submission) either with no think time (closed loop) or at a fixed pace of requests per
second (open loop: a person's pace). Each request's latency and status is recorded by
step, and every task a "next" handed out, by annotator, so that a task handed to two
people is counted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BOX = [10, 10, 40, 30]  # x, y, w, h on the 160 x 120 images


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A web server process group, started and waited for, stopped with SIGTERM."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log: Path, cwd=ROOT):
        self.argv, self.env, self.port, self.log_path, self.cwd = argv, env, port, log, cwd
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                requests.get(f"{self.base}/", timeout=5)
                return self
            if time.monotonic() > deadline:
                self.__exit__()  # stopped, not left behind
                raise RuntimeError(f"server did not answer:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.3)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's processes: its process
        group, workers included (Linux /proc)."""
        total, tick = 0, os.sysconf("SC_CLK_TCK")
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.proc.pid:  # process group
                    total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


class StudioLoop:
    """Studio's API as the canvas uses it."""

    name = "Studio"
    steps = ("next", "create", "submit")

    @staticmethod
    def ok(code: int) -> bool:
        return 0 < code < 400

    def __init__(self, base: str, seeded: dict):
        self.api = f"{base}/api/v1/projects/{seeded['slug']}"
        self.queue, self.label_class = seeded["queue"], seeded["label_class"]

    def session(self, token: str) -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"Token {token}"
        return s

    def request(self, s: requests.Session, step: str, task: dict | None) -> requests.Response:
        if step == "next":
            return s.post(f"{self.api}/queues/{self.queue}/next/", timeout=120)
        if step == "create":
            body = {"label_class": self.label_class, "geometry": BOX}
            return s.post(f"{self.api}/images/{task['image']}/annotations/", json=body, timeout=120)
        return s.post(f"{self.api}/queue-items/{task['id']}/submit/", timeout=120)

    def task(self, response: requests.Response) -> dict | None:
        """The task a "next" answer hands out (id, image), or None when none is left."""
        if response.status_code == 204:
            return None
        data = response.json()
        return {"id": data["id"], "image": data["image"]}


class LabelStudioLoop:
    """Label Studio's API as its labelling UI uses it (an annotation is its submission)."""

    name = "Label Studio"
    steps = ("next", "create")

    @staticmethod
    def ok(code: int) -> bool:
        return 0 < code < 400 or code == 404  # 404: no task left for this user

    def __init__(self, base: str, seeded: dict):
        self.base, self.project = base, seeded["project"]
        self.result = [
            {
                "from_name": "label", "to_name": "image", "type": "rectanglelabels",
                "original_width": 160, "original_height": 120, "image_rotation": 0,
                "value": {"x": BOX[0] / 1.6, "y": BOX[1] / 1.2, "width": BOX[2] / 1.6,
                          "height": BOX[3] / 1.2, "rotation": 0, "rectanglelabels": ["object"]},
            }
        ]  # fmt: skip

    def session(self, token: str) -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"Token {token}"
        return s

    def request(self, s: requests.Session, step: str, task: dict | None) -> requests.Response:
        if step == "next":
            return s.get(f"{self.base}/api/projects/{self.project}/next/", timeout=120)
        body = {"result": self.result, "lead_time": 1.0, "was_cancelled": False}
        url = f"{self.base}/api/tasks/{task['id']}/annotations/?project={self.project}"
        return s.post(url, json=body, timeout=120)

    def task(self, response: requests.Response) -> dict | None:
        if response.status_code == 404:  # "no more tasks" for this user
            return None
        data = response.json()
        return {"id": data["id"], "image": data["id"]}


@dataclass
class Run:
    """What one run measured."""

    loops: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # seconds of CPU the server used during the run
    client_cpu: float = 0.0  # and this process (the annotators' HTTP clients)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)  # (step, status) -> count
    handed: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))  # image -> who
    late: int = 0  # open loop: requests sent more than 100 ms after their time
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def loops_per_s(self) -> float:
        return self.loops / self.seconds if self.seconds else 0.0

    def double_handouts(self) -> int:
        return sum(1 for who in self.handed.values() if len(who) > 1)

    def server_errors(self) -> int:
        return sum(n for (_, code), n in self.errors.items() if code >= 500 or code == 0)

    def percentile(self, step: str, q: float) -> float:
        values = sorted(self.latency[step])
        if not values:
            return float("nan")
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]

    def summary(self, steps) -> str:
        parts = [f"{self.loops_per_s:.1f} loops/s ({self.loops} in {self.seconds:.1f} s)"]
        for step in steps:
            parts.append(
                f"{step} p50 {1000 * self.percentile(step, 50):.0f} ms "
                f"p95 {1000 * self.percentile(step, 95):.0f} ms"
            )
        errors = ", ".join(f"{s} {c}: {n}" for (s, c), n in sorted(self.errors.items()))
        parts.append(f"errors: {errors or 'none'}")
        parts.append(f"double hand-outs: {self.double_handouts()}")
        if self.loops:
            parts.append(
                f"CPU per loop: server {1000 * self.server_cpu / self.loops:.0f} ms, "
                f"clients {1000 * self.client_cpu / self.loops:.0f} ms"
            )
        return "; ".join(parts)


def _annotator(loop, token: str, who: int, run: Run, stop_at: float, pace: float | None,
               phase: float) -> None:  # fmt: skip
    session = loop.session(token)
    due = time.monotonic() + phase
    task = None
    step_no = 0
    while True:
        step = loop.steps[step_no]
        if pace:
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            elif now - due > 0.1:
                with run.lock:
                    run.late += 1
            due = max(due, time.monotonic() - 0.1) + 1 / pace
        if time.monotonic() >= stop_at:
            return
        start = time.perf_counter()
        try:
            response = loop.request(session, step, task)
            code = response.status_code
        except requests.RequestException:
            code = 0
        elapsed = time.perf_counter() - start
        failed = not loop.ok(code)
        with run.lock:
            run.latency[step].append(elapsed)
            if failed:
                run.errors[(step, code)] += 1
        if failed:
            if code == 0 or code >= 500:  # as a person would: wait a moment, then again
                time.sleep(float(response.headers.get("Retry-After", 1)) if code else 1)
            continue  # the same step again (a failed "next" leaves the task theirs)
        if step == "next":
            task = loop.task(response)
            if task is None:
                return  # nothing left for this annotator
            with run.lock:
                run.handed[task["image"]].add(who)
        step_no = (step_no + 1) % len(loop.steps)
        if step_no == 0:
            with run.lock:
                run.loops += 1


def run_loop(
    loop, tokens: list[str], seconds: float, pace: float | None = None, server: Server | None = None
) -> Run:
    """Run every annotator for ``seconds`` (or until the queue is empty); ``pace``: requests
    per second per annotator (open loop), None for no think time (closed loop)."""
    run = Run()
    server_cpu = server.cpu_seconds() if server else 0.0
    client_cpu = time.process_time()
    start = time.monotonic()
    stop_at = start + seconds
    threads = [
        threading.Thread(
            target=_annotator,
            args=(loop, token, n, run, stop_at, pace, (n / len(tokens)) / pace if pace else 0),
            daemon=True,
        )
        for n, token in enumerate(tokens)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 300)
    run.seconds = time.monotonic() - start
    run.client_cpu = time.process_time() - client_cpu
    run.server_cpu = server.cpu_seconds() - server_cpu if server else 0.0
    return run
