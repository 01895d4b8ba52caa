"""Annotation pages: label schema, queues, next task, the canvas page and the review list."""

from __future__ import annotations

import json
from html import unescape

import pytest
from django.test import Client

from annotation.models import Annotation, AnnotationQueue, LabelClass, QueueItem
from annotation.services import labels
from annotation.services import queues as queue_services


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def circle(team):
    return labels.label_class_create(
        actor=team["lead"], project=team["project"], name="circle", kind="mask",
        attributes={"occluded": ["no", "yes"]},
    )  # fmt: skip


def test_lead_defines_classes_renames_and_cannot_delete_one_in_use(team, version, circle):
    lead = _client(team["lead"])
    url = f"/p/{team['project'].slug}/labels/"
    response = lead.post(
        url, {"name": "car", "kind": "box", "colour": "#112233", "attributes": "colour: red, blue"}
    )
    assert response.status_code == 302
    car = LabelClass.objects.get(project=team["project"], name="car")
    assert car.kind == "box" and car.attributes == {"colour": ["red", "blue"]}
    bad = lead.post(url, {"name": "x", "kind": "box", "colour": "#112233", "attributes": "nope"})
    assert "Line 1: write" in bad.content.decode()
    lead.post(url, {"edit": car.pk, "name": "vehicle", "colour": "#445566", "attributes": ""})
    car.refresh_from_db()
    assert car.name == "vehicle" and car.previous_names == ["car"] and car.attributes == {}
    image = version.items.first().image
    labels.annotation_create(
        actor=team["annotator"], image=image, label_class=car, geometry=[1, 1, 5, 5]
    )
    refused = lead.post(url, {"delete": car.pk}, follow=True)
    assert "1 annotation use 'vehicle'" in unescape(refused.content.decode())
    assert LabelClass.objects.filter(pk=car.pk).exists()
    # Annotators see the schema but cannot change it.
    annotator = _client(team["annotator"])
    page = annotator.get(url).content.decode()
    assert "vehicle" in page and "Add a class" not in page
    annotator.post(url, {"name": "sneaky", "kind": "box", "colour": "#000000"})
    assert not LabelClass.objects.filter(name="sneaky").exists()
    assert _client(team["outsider"]).get(url).status_code == 404


def test_queue_form_next_task_and_canvas_page(team, version, circle):
    lead = _client(team["lead"])
    url = f"/p/{team['project'].slug}/queues/"
    response = lead.post(url, {
        "name": "Masks", "version": version.pk, "assignees": ["annotator"],
        "instructions": "Mask every cat", "lease_minutes": 15, "annotators_per_image": 1,
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    queue = AnnotationQueue.objects.get(name="Masks")
    assert queue.items.count() == version.image_count and list(queue.assignees.all()) == [
        team["annotator"]
    ]
    annotator = _client(team["annotator"])
    assert "Start annotating" in annotator.get(url).content.decode()
    started = annotator.post(f"{url}{queue.pk}/next/")
    item = QueueItem.objects.get(queue=queue, assignee=team["annotator"])
    assert (
        started.status_code == 302 and started.url == f"/p/{team['project'].slug}/tasks/{item.pk}/"
    )
    page = annotator.get(started.url)
    html = page.content.decode()
    assert page.status_code == 200 and "Mask every cat" in html and "konva.min.js" in html
    config = page.context["config"]
    assert config["mode"] == "annotate" and config["image"]["id"] == item.image_id
    assert config["classes"][0]["name"] == "circle"
    assert config["submit"].endswith(f"/queue-items/{item.pk}/submit/")
    # Not assigned: the reviewer is refused the queue with the reason.
    refused = _client(team["reviewer"]).post(f"{url}{queue.pk}/next/", follow=True)
    assert "not assigned" in refused.content.decode()
    # Someone else's task is not shown.
    other = _client(team["lead"]).get(started.url, follow=True)
    assert "not yours" in other.content.decode()
    assert _client(team["outsider"]).get(started.url).status_code == 404


def test_review_list_shows_submitted_images_to_reviewers_only(team, version, circle):
    image = version.items.order_by("image_id").first().image
    mask = [[0] * image.width for _ in range(image.height)]
    for row in mask[10:20]:
        row[10:20] = [1] * 10
    import numpy as np

    from annotation import geometry as geo

    annotation = labels.annotation_create(
        actor=team["annotator"], image=image, label_class=circle,
        geometry=geo.mask_from_array(np.array(mask, bool)), status="submitted",
    )  # fmt: skip
    reviewer = _client(team["reviewer"])
    listing = reviewer.get(f"/p/{team['project'].slug}/review/")
    assert [i.pk for i in listing.context["page"].object_list] == [image.pk]
    page = reviewer.get(f"/p/{team['project'].slug}/review/images/{image.pk}/")
    assert page.context["config"]["mode"] == "review"
    queue_services.annotation_review(
        actor=team["reviewer"], annotation=annotation, decision="accept"
    )
    assert not reviewer.get(f"/p/{team['project'].slug}/review/").context["page"].object_list
    denied = _client(team["annotator"]).get(f"/p/{team['project'].slug}/review/")
    assert denied.status_code == 403
    assert Annotation.objects.get(pk=annotation.pk).status == "accepted"
    assert json.loads(json.dumps(page.context["config"]))["review"].endswith("/annotations/")


def test_consensus_task_shows_only_your_own_work(team, version, circle, api):
    from tests.factories import make_user

    second = make_user("annotator2")
    team["project"].memberships.create(user=second, role="annotator")
    lead = _client(team["lead"])
    lead.post(f"/p/{team['project'].slug}/queues/", {
        "name": "Twice", "version": version.pk, "assignees": ["annotator", "annotator2"],
        "lease_minutes": 15, "annotators_per_image": 2,
    })  # fmt: skip
    queue = AnnotationQueue.objects.get(name="Twice")
    assert queue.annotators_per_image == 2
    first = queue_services.queue_next(actor=team["annotator"], queue=queue)
    other = queue_services.queue_next(actor=second, queue=queue)
    assert first.image_id == other.image_id and first.pk != other.pk
    box = [[0] * first.image.width for _ in range(first.image.height)]
    box[3][3] = 1
    import numpy as np

    from annotation import geometry as geo

    mine = labels.annotation_create(
        actor=team["annotator"], image=first.image, label_class=circle,
        geometry=geo.mask_from_array(np.array(box, bool)),
    )  # fmt: skip
    page = _client(second).get(f"/p/{team['project'].slug}/tasks/{other.pk}/")
    listing = page.context["config"]["api"]["list"]
    assert listing.endswith(f"?task={other.pk}")
    assert api(second).get(listing).json() == []
    shown = api(team["annotator"]).get(
        page.context["config"]["api"]["annotations"] + f"?task={first.pk}"
    )
    assert [a["id"] for a in shown.json()] == [mine.pk]
    # Someone else's task cannot be used to read through.
    refused = api(second).get(page.context["config"]["api"]["annotations"] + f"?task={first.pk}")
    assert refused.status_code == 400 and "not yours" in refused.json()["error"]["message"]


def test_queue_page_starts_a_boxes_to_masks_job(team, version, circle):
    from studio.models import Job
    from studio.services.jobs import job_run

    car = labels.label_class_create(
        actor=team["lead"], project=team["project"], name="car", kind="box"
    )
    queue = queue_services.queue_create(
        actor=team["lead"], project=team["project"], name="Q", version=version
    )
    image = version.items.order_by("image_id").first().image
    labels.annotation_create(
        actor=team["annotator"], image=image, label_class=car, geometry=[100, 60, 200, 160]
    )
    lead = _client(team["lead"])
    page = lead.get(f"/p/{team['project'].slug}/queues/").content.decode()
    assert "Pre-annotate this queue" in page and "needs a SAM checkpoint" in page
    url = f"/p/{team['project'].slug}/queues/{queue.pk}/preannotate/"
    refused = lead.post(url, {"mode": "automatic", "label_class": circle.pk}, follow=True)
    assert "needs a Segment Anything checkpoint" in refused.content.decode()
    started = lead.post(url, {"mode": "boxes_to_masks", "label_class": circle.pk})
    job = Job.objects.get(kind="preannotate")
    assert started.url == f"/jobs/{job.pk}/"
    job_run(job_id=job.pk)
    draft = Annotation.objects.get(label_class=circle)
    assert draft.status == "draft" and draft.source == "grabcut" and draft.image == image
    assert _client(team["annotator"]).post(url, {"mode": "boxes_to_masks",
                                                 "label_class": circle.pk}).status_code == 403  # fmt: skip
    assert Job.objects.filter(kind="preannotate").count() == 1  # annotators may not start one
    assert _client(team["outsider"]).post(url, {"label_class": circle.pk}).status_code == 404


def test_admin_lists_annotation_records_read_only(client, team, version, circle):
    from django.contrib.auth import get_user_model

    from tests.factories import PASSWORD

    image = version.items.order_by("image_id").first().image
    import numpy as np

    from annotation import geometry as geo

    mask = np.zeros((image.height, image.width), bool)
    mask[5:9, 5:9] = True
    annotation = labels.annotation_create(
        actor=team["annotator"], image=image, label_class=circle,
        geometry=geo.mask_from_array(mask), status="submitted",
    )  # fmt: skip
    queue_services.annotation_review(
        actor=team["reviewer"], annotation=annotation, decision="reject", comment="too small"
    )
    queue_services.queue_create(actor=team["lead"], project=team["project"], name="Q",
                                version=version)  # fmt: skip
    root = get_user_model().objects.create_superuser("root", "root@example.invalid", PASSWORD)
    client.force_login(root)
    for url in ["/admin/annotation/labelclass/", "/admin/annotation/annotationqueue/",
                "/admin/annotation/annotation/", f"/admin/annotation/annotation/{annotation.pk}/change/",
                "/admin/annotation/reviewdecision/", "/admin/annotation/consensusresult/",
                "/admin/annotation/tasksubmission/", "/admin/annotation/taskskip/"]:  # fmt: skip
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get(f"/admin/annotation/annotation/{annotation.pk}/change/").content.decode()
    assert "too small" in page and 'name="_save"' not in page  # history and review, read-only
    assert client.get("/admin/annotation/labelclass/").context["cl"].result_list[0]._used == 1
