"""The API against its own OpenAPI schema, with schemathesis (bounded, deterministic).

The schema is loaded from ``/api/schema/`` (drf-spectacular) and every operation is
called through the WSGI application, no network, as the lead of a seeded project. Half
of the generated ids are swapped for ids of seeded rows, so the answers that carry data
are checked as well as the 404s. Checked on every response: no 5xx, the status code is
documented, the content type and the body match the schema.

It is part of the normal suite, so it stays small: a few derandomized examples per
operation (about a minute on two cores). ``STUDIO_SCHEMA_EXAMPLES`` raises the count
for a deeper run.
"""

from __future__ import annotations

import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from annotation.models import AnnotationRevision, QueueItem
from annotation.services.labels import annotation_create, label_class_create
from annotation.services.queues import queue_create
from studio.models import DatasetVersion, Image, Job, Membership, Objective
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from studio.services.projects import objective_create
from tests.factories import image_bytes, upload

EXAMPLES = int(os.environ.get("STUDIO_SCHEMA_EXAMPLES", "4"))
CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, status_code_conformance,
                              content_type_conformance, response_schema_conformance],
    # Invalid requests: never a 5xx, and the 4xx documented. (negative_data_rejection, run
    # by hand, found a form body that emptied a problem statement's approaches; it also
    # flags bodies a form encoding cannot express, such as null, so it is not run here.)
    GenerationMode.NEGATIVE: [not_a_server_error, status_code_conformance,
                              content_type_conformance],
}  # fmt: skip


@pytest.fixture
def seeded(team, dataset) -> dict:
    lead, project = team["lead"], team["project"]
    job = upload_create(actor=lead, project=project, dataset=dataset,
                        files=[upload(f"{n}.png", image_bytes(n, fmt="PNG")) for n in range(2)])  # fmt: skip
    job_run(job_id=job.pk)
    box = label_class_create(actor=lead, project=project, name="car", kind="box")
    label_class_create(actor=lead, project=project, name="cell", kind="mask")
    images = list(Image.objects.filter(project=project).order_by("pk"))
    annotation = annotation_create(actor=lead, image=images[0], label_class=box,
                                   geometry=[1, 1, 5, 5])  # fmt: skip
    version = DatasetVersion.objects.get(dataset=dataset)
    # Embedded and analyzed, so similar/, outliers/ and map/ answer with data to check.
    from annotation.services.curation import analyze_job_start
    from annotation.services.embeddings import embedding_job_start

    job_run(
        job_id=embedding_job_start(actor=lead, version=version, backbone="efficientnet_lite0").pk
    )
    job_run(job_id=analyze_job_start(actor=lead, version=version, threshold=0.9).pk)
    queue = queue_create(actor=lead, project=project, name="q", version=version, assignees=[lead])
    objective_create(actor=lead, project=project, title="IoU", kpi="mIoU", target_value=0.5)
    token = Token.objects.create(user=lead)
    return {
        "slug": project.slug,
        "token": token.key,
        # the path segment before an id -> the id of a seeded row
        "ids": {
            "datasets": dataset.pk,
            "versions": version.number,
            "images": images[0].pk,
            "annotations": annotation.pk,
            "history": AnnotationRevision.objects.filter(annotation=annotation).first().pk,
            "label-classes": box.pk,
            "jobs": Job.objects.filter(project=project).first().pk,
            "members": Membership.objects.filter(project=project, user=lead).first().pk,
            "objectives": Objective.objects.get(project=project).pk,
            "queues": queue.pk,
            "queue-items": QueueItem.objects.filter(queue=queue).first().pk,
        },
    }


def _seed_path(case, seeded: dict) -> None:
    """Point the path at the seeded project, and every other case at seeded rows."""
    params = case.path_parameters or {}
    for name, value in list(params.items()):
        if name == "slug":
            params[name] = seeded["slug"]
            continue
        match = re.search(r"/([\w-]+)/\{" + re.escape(name) + r"\}", case.operation.path)
        real = seeded["ids"].get(match.group(1)) if match else None
        if real is not None and isinstance(value, int) and value % 2 == 0:
            params[name] = real


@pytest.fixture
def connection_kept():
    """Keep the test's database connection open across WSGI requests, as Django's test
    client does (the handler closes it as a request starts and finishes)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_to_its_schema(seeded, connection_kept, mode):
    # One test drives every operation (schemathesis' pytest plugin does not run under
    # pytest 9): each runs its own derandomized Hypothesis search, and every operation's
    # failure is collected, so one run reports them all.
    from studio.wsgi import application

    api_schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    headers = {"Authorization": f"Token {seeded['token']}"}
    failures = {}
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
        def run(case):
            _seed_path(case, seeded)
            case.call_and_validate(headers=headers, checks=CHECKS[mode])

        try:
            run()
        except Unsatisfiable:
            continue  # negative mode: nothing in this operation can be made invalid
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported together below
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:3000]
    assert operations > 50
    assert not failures, "\n\n".join(f"{op}\n{text}" for op, text in failures.items())
