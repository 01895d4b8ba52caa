"""Quality pages: a queue's statistics, per annotator, with plotly bar charts and a table."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation import charts
from annotation.selectors import queues as queue_selectors
from annotation.services import quality_stats
from studio.security import chart_page
from studio.views import member_view


@require_GET
@chart_page
@member_view
def queue_stats(request: HttpRequest, project, queue_id: int) -> HttpResponse:
    """A queue's progress and its annotators' numbers; per-image quality for reviewers and leads."""
    queue = queue_selectors.queue_get(user=request.user, project=project, queue_id=queue_id)
    stats = quality_stats.queue_stats(user=request.user, queue=queue)
    honeypots = stats["queue"]["honeypots"] is not None
    # Per-image agreement and honeypot scores: reviewers and leads only (the service
    # refuses annotators, who must not learn which images are honeypots).
    images = (
        quality_stats.queue_image_quality(user=request.user, queue=queue) if honeypots else None
    )
    return render(
        request,
        "annotation/queue_stats.html",
        {
            "project": project,
            "queue": queue,
            "stats": stats,
            "summary": stats["queue"],
            "annotators": stats["annotators"],
            "show_honeypots": honeypots,
            "images": images,
            "figures": charts.quality_figures(stats["annotators"], honeypots=honeypots),
        },
    )
