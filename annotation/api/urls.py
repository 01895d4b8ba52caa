"""The annotation app's routes under /api/v1/, included by studio/api/urls.py by name."""

from __future__ import annotations

from annotation.api import curation, exchange, labels, preannotate, quality, queues

urlpatterns = (
    curation.urlpatterns
    + labels.urlpatterns
    + queues.urlpatterns
    + preannotate.urlpatterns
    + quality.urlpatterns
    + exchange.urlpatterns
)
