"""Plotly figures for curation pages, built as plain dicts from selector output (no I/O)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = [
    "#3559e0", "#e0533a", "#12805c", "#b54708", "#7a5af8", "#0ba5ec", "#dd2590", "#667085",
    "#66c61c", "#f79009", "#155eef", "#875bf7", "#ee46bc", "#2e90fa", "#16b364", "#e62e05",
]  # fmt: skip


def _numeric(values: Sequence) -> bool:
    seen = [v for v in values if v is not None]
    return bool(seen) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in seen)


def _natural(text: str) -> list:
    """Sort key that puts "Cluster 2" before "Cluster 10"."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def map_figure(
    points: Sequence[Sequence],
    colour: Mapping[int, object],
    colour_name: str,
    names: Mapping[int, str],
    thumbs: Mapping[int, str],
) -> dict:
    """Scatter of [image id, x, y] points coloured by a category or a number per image id."""
    layout = {
        "dragmode": "lasso",
        "hovermode": "closest",
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "xaxis": {"visible": False},
        "yaxis": {"visible": False, "scaleanchor": "x"},
        "legend": {"title": {"text": escape(colour_name)}},
        "height": 560,
    }

    def trace(rows, **extra):
        return {
            "type": "scattergl" if len(points) > 5000 else "scatter",
            "mode": "markers",
            "x": [r[1] for r in rows],
            "y": [r[2] for r in rows],
            # Plotly renders a subset of HTML in text; user strings are escaped first.
            # [id, thumbnail, escaped name for plotly's hover, raw name for the page's own DOM]
            "customdata": [
                [r[0], thumbs.get(r[0], ""), escape(names.get(r[0], "")), names.get(r[0], "")]
                for r in rows
            ],
            "hovertemplate": "%{customdata[2]}<extra></extra>",
            **extra,
        }

    values = [colour.get(p[0]) for p in points]
    if _numeric(values):
        finite = [v if v is not None and math.isfinite(v) else None for v in values]
        return {
            "data": [trace(points, marker={"color": finite, "colorscale": "Viridis", "showscale": True,
                                           "colorbar": {"title": {"text": escape(colour_name)}}, "size": 8})],
            "layout": {**layout, "showlegend": False},
        }  # fmt: skip
    groups: dict[str, list] = {}
    for p, v in zip(points, values, strict=True):
        groups.setdefault("—" if v is None else escape(str(v)), []).append(p)
    data = [
        trace(
            rows,
            name=f"{label} ({len(rows)})",
            marker={"color": PALETTE[i % len(PALETTE)], "size": 8},
        )
        for i, (label, rows) in enumerate(sorted(groups.items(), key=lambda kv: _natural(kv[0])))
    ]
    return {"data": data, "layout": layout}


def histogram_figure(binned: Mapping, label: str) -> dict:
    """A small histogram of one quality metric, from bins counted on the server.

    ``binned`` is ``{"start", "width", "counts"}`` (``quality_histograms_compute``).
    """
    start, width, counts = binned["start"], binned["width"], binned["counts"]
    return {
        "data": [
            {
                "type": "bar",
                "x": [round(start + width * (i + 0.5), 6) for i in range(len(counts))],
                "y": counts,
                "width": width,
                "marker": {"color": "#3559e0"},
            }
        ],  # fmt: skip
        "layout": {
            "title": {"text": escape(label), "font": {"size": 13}},
            "margin": {"l": 35, "r": 10, "t": 30, "b": 30},
            "height": 200,
            "bargap": 0.05,
        },
    }


def annotator_bar_figure(
    rows: Sequence[Mapping], key: str, title: str, *, unit: str = "", scale: float = 1.0,
    maximum: float | None = None, colour: str = "#3559e0", digits: int = 1,
) -> dict:  # fmt: skip
    """Bars of one per-annotator number (rows from the quality statistics); None is no bar.

    ``scale`` turns a rate into a percentage (100); ``maximum`` fixes the axis, so bars of
    different pages compare by eye.
    """
    names = [escape(str(r["username"])) for r in rows]
    values = [None if r.get(key) is None else r[key] * scale for r in rows]
    text = ["—" if v is None else f"{v:.{digits}f}{unit}" for v in values]
    yaxis: dict = {"rangemode": "tozero", "gridcolor": "#eaecf0"}  # the title names the unit
    if maximum is not None:
        yaxis["range"] = [0, maximum * 1.08]
    return {
        "data": [
            {
                "type": "bar",
                "x": names,
                "y": values,
                "text": text,
                "textposition": "outside",
                "cliponaxis": False,
                "marker": {"color": colour},
                "hovertemplate": "%{x}: %{text}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": escape(title), "font": {"size": 14}},
            "margin": {"l": 40, "r": 10, "t": 40, "b": 40},
            "height": 260,
            "yaxis": yaxis,
            "xaxis": {"type": "category"},
            "plot_bgcolor": "#fff",
        },
    }


def quality_figures(rows: Sequence[Mapping], *, honeypots: bool) -> list[dict]:
    """The stats page's per-annotator bar charts: throughput, acceptance, agreement, honeypots."""
    figures = [
        ("chart-throughput", annotator_bar_figure(
            rows, "throughput", "Throughput (tasks / hour)", colour=PALETTE[0])),
        ("chart-acceptance", annotator_bar_figure(
            rows, "acceptance_rate", "Acceptance rate (%)", unit="%", scale=100, maximum=100,
            digits=0, colour=PALETTE[2])),
        ("chart-agreement", annotator_bar_figure(
            rows, "agreement", "Agreement (mean mask IoU)", maximum=1, digits=2, colour=PALETTE[4])),
    ]  # fmt: skip
    if honeypots:
        figures.append(
            ("chart-honeypots", annotator_bar_figure(
                rows, "honeypot_accuracy", "Honeypot accuracy (%)", unit="%", scale=100,
                maximum=100, digits=0, colour=PALETTE[1])),
        )  # fmt: skip
    return [{"id": name, "figure": figure} for name, figure in figures]
