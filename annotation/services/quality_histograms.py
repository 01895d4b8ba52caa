"""Bin a version's quality metrics once, when it is analysed, for the Curate page.

The page used to load every image's value of every metric on each view (a million
floats per chart at a million images) and let the browser bin them. The analysis job
bins them in the database instead, and the page reads one row.
"""

from __future__ import annotations

from django.db.models import Count, F, FloatField, Max, Min, QuerySet, Value
from django.db.models.functions import Cast, Floor, Least

from annotation.models import ImageQuality, QualityHistograms, VersionImageScore
from studio.models import DatasetVersion

BINS = 30
PIXEL_METRICS = (
    "brightness",
    "contrast",
    "sharpness",
    "colourfulness",
    "aspect_ratio",
    "megapixels",
)
VERSION_METRICS = ("uniqueness", "outlier_score")


def bin_values(rows: QuerySet, metric: str, bins: int = BINS) -> dict | None:
    """Count the rows' ``metric`` in ``bins`` equal bins from its minimum to its maximum.

    Return ``{"start", "width", "counts"}``, or None when no row has a value. The
    maximum falls in the last bin. Two aggregate queries, whatever the number of rows.
    """
    span = rows.aggregate(lo=Min(metric), hi=Max(metric), n=Count(metric))
    if not span["n"]:
        return None
    lo, hi = float(span["lo"]), float(span["hi"])
    width = (hi - lo) / bins if hi > lo else 1.0
    index = Least(
        Floor((Cast(F(metric), FloatField()) - Value(lo)) / Value(width)),
        Value(float(bins - 1)),
    )
    counts = [0] * bins
    for b, n in (
        rows.exclude(**{f"{metric}__isnull": True})
        .annotate(b=index)
        .order_by()
        .values("b")
        .annotate(n=Count("pk"))
        .values_list("b", "n")
    ):
        counts[int(b)] += n
    return {"start": lo, "width": width, "counts": counts}


def quality_histograms_compute(*, version: DatasetVersion) -> QualityHistograms:
    """Bin every quality metric of the version's images and store the bins (an analysis step).

    Precondition: called by the analysis job after it wrote the version's quality rows
    and scores; the bins describe the version as analysed then.
    """
    pixel = ImageQuality.objects.filter(image_id__in=version.items.values("image_id"))
    scores = VersionImageScore.objects.filter(version=version)
    bins = {}
    for metric in (*PIXEL_METRICS, *VERSION_METRICS):
        found = bin_values(pixel if metric in PIXEL_METRICS else scores, metric)
        if found is not None:
            bins[metric] = found
    histograms, _ = QualityHistograms.objects.update_or_create(
        version=version, defaults={"bins": bins}
    )
    return histograms
