"""The smart tool's clicks-to-IoU protocol: Studio's GrabCut against textbook GrabCut.

The standard protocol for interactive segmentation: the first click goes at the centre of
the object (the pixel farthest from its edge); each next click at the centre of the
largest error region, positive on missed object, negative on a false positive; up to 20
clicks, stopping once IoU reaches 0.95 (what is left is edge slivers nobody clicks).
Reported: NoC@85 and NoC@90 (clicks to reach that IoU, 20 when never), mean IoU after 1,
3 and 5 clicks (the last IoU carried on once stopped), the share of clicks whose pixel
ends on the side it asked for (must be 100 %) and of earlier clicks still there, the
objects where IoU fell after a click, and click latency.

Objects: ``click_objects.click_object(40..79)``, generated with exact masks; Studio's
parameters were chosen on objects 0-39, so this set was not used to tune them.
``BENCH_CLICK_OBJECTS`` sets how many (default 40).

Studio is driven as the canvas drives it: each click sent with the mask of the clicks
before it (``previous``), so only the new click runs. The peer is OpenCV GrabCut used the
textbook way (all clicks as sure disks in one mask, positives then negatives, at full
size, 5 iterations, a square a quarter of the image wide around the positive clicks):
Studio's tool before issue 10. Both run in the same process, object by object.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pytest

from studio.ml.clicks import Click
from studio.ml.grabcut import grabcut_mask
from tests.benchmarks.click_objects import click_object, iou, next_click, textbook_grabcut

pytestmark = pytest.mark.benchmark
COUNT = int(os.environ.get("BENCH_CLICK_OBJECTS", 40))
MAX_CLICKS, STOP = 20, 0.95


@dataclass
class Run:
    ious: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    obeyed: int = 0  # clicks whose own pixel ended on their side
    kept: int = 0  # earlier clicks still on their side (unless a later click covers them)
    earlier: int = 0
    falls: list[float] = field(default_factory=list)

    def noc(self, threshold: float) -> int:
        return next((k + 1 for k, v in enumerate(self.ious) if v >= threshold), MAX_CLICKS)

    def after(self, k: int) -> float:
        return self.ious[min(k, len(self.ious)) - 1]


def _covered(c: Click, later: list[Click]) -> bool:
    """Whether a later click of the other side touches c's pixel (the later one wins)."""
    return any(
        d.positive != c.positive and abs(int(d.x) - int(c.x)) + abs(int(d.y) - int(c.y)) <= 1
        for d in later
    )


def protocol(image: np.ndarray, truth: np.ndarray, segment) -> Run:
    run, clicks, mask = Run(), [], np.zeros_like(truth)
    while len(clicks) < MAX_CLICKS and (not run.ious or run.ious[-1] < STOP):
        nxt = next_click(mask, truth)
        if nxt is None:
            break
        clicks.append(Click(*nxt))
        wall, cpu = time.perf_counter(), time.process_time()
        new = segment(image, clicks, mask if len(clicks) > 1 else None)
        run.cpu.append(time.process_time() - cpu)
        run.wall.append(time.perf_counter() - wall)
        x, y = int(nxt[0]), int(nxt[1])
        run.obeyed += bool(new[y, x] == nxt[2])
        for i, c in enumerate(clicks[:-1]):
            if not _covered(c, clicks[i + 1 :]):
                run.earlier += 1
                run.kept += bool(new[int(c.y), int(c.x)] == c.positive)
        score = iou(new, truth)
        if run.ious and score < run.ious[-1]:
            run.falls.append(run.ious[-1] - score)
        run.ious.append(score)
        mask = new
    return run


def studio(image, clicks, previous):
    return grabcut_mask(image, clicks=clicks, previous=previous, previous_clicks=len(clicks) - 1)


def peer(image, clicks, previous):
    return textbook_grabcut(image, [(c.x, c.y, c.positive) for c in clicks])


def _summary(name: str, runs: list[Run]) -> dict:
    wall = np.concatenate([r.wall for r in runs])
    cpu = np.concatenate([r.cpu for r in runs])
    clicks = sum(len(r.ious) for r in runs)
    return {
        "name": name,
        "noc85": statistics.mean(r.noc(0.85) for r in runs),
        "noc90": statistics.mean(r.noc(0.90) for r in runs),
        "failed90": sum(r.noc(0.90) == MAX_CLICKS and r.ious[-1] < 0.90 for r in runs),
        "iou": [statistics.mean(r.after(k) for r in runs) for k in (1, 3, 5)],
        "obeyed": sum(r.obeyed for r in runs) / clicks,
        "kept": sum(r.kept for r in runs) / max(1, sum(r.earlier for r in runs))
        if any(r.earlier for r in runs)
        else 1.0,
        "fell": sum(bool(r.falls) for r in runs),
        "fell_1pt": sum(any(f > 0.01 for f in r.falls) for r in runs),
        "clicks": clicks,
        "wall": [np.percentile(wall, 50), np.percentile(wall, 95), wall.max()],
        "cpu": [np.percentile(cpu, 50), np.percentile(cpu, 95), cpu.max()],
    }


def test_clicks_to_iou_against_textbook_grabcut(capsys):
    load_before = os.getloadavg()[0]
    results: dict[str, list[Run]] = {"studio": [], "peer": []}
    kinds: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index in range(40, 40 + COUNT):
        obj = click_object(index)
        for name, segment in (("peer", peer), ("studio", studio)):
            run = protocol(obj.image, obj.mask, segment)
            results[name].append(run)
            kinds[obj.kind][name].append(run.noc(0.90))
    load_after = os.getloadavg()[0]
    s, p = _summary("Studio", results["studio"]), _summary("textbook GrabCut", results["peer"])
    with capsys.disabled():
        print(f"\nClicks to IoU on {COUNT} generated objects (load average {load_before:.1f} "
              f"before, {load_after:.1f} after, on {os.cpu_count()} cores)")  # fmt: skip
        for r in (s, p):
            print(
                f"{r['name']:>16}: NoC@85 {r['noc85']:.2f}, NoC@90 {r['noc90']:.2f} "
                f"({r['failed90']} never reach 0.90); IoU after 1/3/5 clicks "
                f"{r['iou'][0]:.3f}/{r['iou'][1]:.3f}/{r['iou'][2]:.3f}; clicked pixel on its "
                f"side {100 * r['obeyed']:.1f} % ({r['clicks']} clicks), earlier clicks kept "
                f"{100 * r['kept']:.1f} %; IoU fell after a click on {r['fell']} objects "
                f"({r['fell_1pt']} by more than 0.01); latency p50/p95/max "
                f"{r['wall'][0]:.3f}/{r['wall'][1]:.3f}/{r['wall'][2]:.3f} s wall, "
                f"{r['cpu'][0]:.3f}/{r['cpu'][1]:.3f}/{r['cpu'][2]:.3f} s CPU"
            )
        print(
            f"Studio / textbook: NoC@85 ratio {s['noc85'] / p['noc85']:.2f}, NoC@90 ratio "
            f"{s['noc90'] / p['noc90']:.2f}; latency p50 ratio {s['wall'][0] / p['wall'][0]:.2f}, "
            f"p95 ratio {s['wall'][1] / p['wall'][1]:.2f} (wall), CPU p95 ratio "
            f"{s['cpu'][1] / p['cpu'][1]:.2f}"
        )
        print("NoC@90 by kind (Studio / textbook): " + ", ".join(
            f"{kind} {statistics.mean(v['studio']):.1f}/{statistics.mean(v['peer']):.1f}"
            for kind, v in kinds.items()
        ))  # fmt: skip
    assert s["obeyed"] == 1.0 and s["kept"] == 1.0
