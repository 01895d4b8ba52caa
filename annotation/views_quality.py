"""Quality pages: a queue's statistics, per annotator, with plotly bar charts and a table."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation import charts
from annotation import selectors as curation
from annotation.services import quality_control
from studio.security import chart_page
from studio.views import member_view


@require_GET
@chart_page
@member_view
def queue_stats(request: HttpRequest, project, queue_id: int) -> HttpResponse:
    queue = curation.queue_get(user=request.user, project=project, queue_id=queue_id)
    stats = quality_control.queue_stats(user=request.user, queue=queue)
    honeypots = stats["queue"]["honeypots"] is not None
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
            "figures": charts.quality_figures(stats["annotators"], honeypots=honeypots),
        },
    )
