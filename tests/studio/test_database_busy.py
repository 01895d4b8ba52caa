"""A request the database cannot take in time is a 503 with Retry-After, never a 500.

Another connection really holds the lock "next task" needs (SQLite: the write lock;
PostgreSQL: the annotator's membership row), and Studio's connection is told to wait only
50 ms for it, so the request runs into the same error a long queue of writers causes.
"""

from __future__ import annotations

import pytest
from django.db import connection, connections
from django.db.backends.signals import connection_created
from rest_framework.test import APIClient

from annotation.models import QueueItem
from annotation.services import queues
from studio.models import Image, Membership
from tests.factories import make_project, make_user


def _wait_briefly(sender=None, connection=None, **kwargs) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA busy_timeout = 50")
        else:
            cursor.execute("SET lock_timeout = '50ms'")


@pytest.fixture
def impatient():
    """Every Studio connection, the current one and new ones, waits 50 ms for a lock."""
    connection.ensure_connection()
    _wait_briefly(connection=connection)
    connection_created.connect(_wait_briefly)
    yield
    connection_created.disconnect(_wait_briefly)
    connection.close()  # the next test gets the configured wait back


@pytest.mark.django_db(transaction=True)
def test_next_task_behind_a_held_lock_answers_503_with_retry_after(impatient):
    lead, annotator = make_user("lead"), make_user("annotator")
    project = make_project(lead, "Busy", annotator=annotator)
    image = Image.objects.create(
        project=project, sha256="0" * 64, format="PNG", width=8, height=8, byte_size=1
    )
    queue = queues.queue_create(actor=lead, project=project, name="Q", image_ids=[image.pk])
    client = APIClient()
    client.force_authenticate(annotator)
    url = f"/api/v1/projects/{project.slug}/queues/{queue.pk}/next/"

    other = connections.create_connection("default")
    other.ensure_connection()
    with other.cursor() as cursor:
        if other.vendor == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute("BEGIN")
            membership = Membership.objects.get(project=project, user=annotator)
            cursor.execute(
                "SELECT 1 FROM studio_membership WHERE id = %s FOR UPDATE", [membership.pk]
            )
    try:
        response = client.post(url)
    finally:
        with other.cursor() as cursor:
            cursor.execute("ROLLBACK")
        other.close()
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "unavailable"
    assert not QueueItem.objects.filter(status="in_progress").exists()  # nothing half-done
    # Once the lock is gone the same request goes through.
    assert client.post(url).status_code == 200
