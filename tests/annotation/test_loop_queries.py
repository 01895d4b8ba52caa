"""The annotator loop's SQL: queries per step through the API, and the index "next" walks.

Next task -> create one box -> submit is what every annotator repeats all day; each step's
queries are counted through the real API (token authentication included), so a change that
adds a query to the loop fails here. The ceilings are what the loop costs today, on SQLite
and PostgreSQL alike (savepoints, which only the test's own transaction adds, not counted).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Annotation, TaskSubmission
from annotation.services import labels
from annotation.services import queues as svc
from studio.models import Image
from tests.factories import make_project, make_user

CEILING = {"next": 7, "next again": 8, "create": 7, "submit": 9}


@pytest.fixture
def loop(db):
    lead = make_user("lead")
    annotator = make_user("annotator")
    project = make_project(lead, "Loop", annotator=annotator)
    images = Image.objects.bulk_create(
        Image(project=project, sha256=f"{i:064x}", format="PNG", width=64, height=48, byte_size=1)
        for i in range(30)
    )
    box = labels.label_class_create(actor=lead, project=project, name="sign", kind="box")
    queue = svc.queue_create(
        actor=lead, project=project, name="Q", image_ids=[i.pk for i in images]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    return {"client": client, "base": f"/api/v1/projects/{project.slug}/", "queue": queue,
            "box": box, "annotator": annotator}  # fmt: skip


def _statements(ctx) -> list[str]:
    return [
        q["sql"] for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]


def _step(client, method: str, url: str, status: int, **kwargs) -> tuple[dict, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        r = getattr(client, method)(url, format="json", **kwargs)
    assert r.status_code == status, r.content
    return (r.json() if r.content else {}), _statements(ctx)


def test_each_step_of_the_loop_stays_under_its_query_ceiling(loop):
    c, base, queue = loop["client"], loop["base"], loop["queue"]
    seen = {}
    for _ in range(3):  # the cost does not grow with the annotator's history
        task, seen["next"] = _step(c, "post", f"{base}queues/{queue.pk}/next/", 200)
        again, seen["next again"] = _step(c, "post", f"{base}queues/{queue.pk}/next/", 200)
        assert again["id"] == task["id"]
        body = {"label_class": loop["box"].pk, "geometry": [2, 2, 20, 10]}
        _, seen["create"] = _step(
            c, "post", f"{base}images/{task['image']}/annotations/", 201, data=body
        )
        done, seen["submit"] = _step(c, "post", f"{base}queue-items/{task['id']}/submit/", 200)
        assert done["status"] == "submitted" and len(done["annotations"]) == 1
        for step, statements in seen.items():
            assert len(statements) <= CEILING[step], (step, len(statements), statements)
    # "Next task" never counts the queue's items.
    assert not any("COUNT(" in sql.upper() for sql in seen["next"] + seen["next again"])
    assert Annotation.objects.filter(status="submitted").count() == 3
    assert TaskSubmission.objects.count() == 3


def test_a_second_submission_of_a_task_changes_nothing(loop):
    c, base, queue = loop["client"], loop["base"], loop["queue"]
    task, _ = _step(c, "post", f"{base}queues/{queue.pk}/next/", 200)
    body = {"label_class": loop["box"].pk, "geometry": [2, 2, 20, 10]}
    _step(c, "post", f"{base}images/{task['image']}/annotations/", 201, data=body)
    _step(c, "post", f"{base}queue-items/{task['id']}/submit/", 200)
    error, _ = _step(c, "post", f"{base}queue-items/{task['id']}/submit/", 400)
    assert "not yours" in error["error"]["message"]
    assert TaskSubmission.objects.filter(item_id=task["id"]).count() == 1
    assert Annotation.objects.get(image_id=task["image"]).version == 2


def test_next_task_walks_the_index_of_open_items_instead_of_sorting_them(loop):
    with CaptureQueriesContext(connection) as ctx:
        svc.queue_next(actor=loop["annotator"], queue=loop["queue"])
    (lease,) = [sql for sql in _statements(ctx) if sql.startswith("UPDATE")]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a 30-row table: force the choice
            cursor.execute(f"EXPLAIN {lease}")
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {lease}")
        plan = "\n".join(str(row) for row in cursor.fetchall())
    assert "queue_item_open_order" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
