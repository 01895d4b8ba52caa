"""Honeypots: images with known answers mixed into a queue to score each annotator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Annotation, Honeypot, QueueItem, TaskSubmission
from annotation.services import labels
from annotation.services import queues as svc
from annotation.services.quality_control import queue_add_honeypots, task_annotations
from studio.errors import ApplicationError, Forbidden
from tests.factories import make_user

GOLD = [10, 10, 40, 40]


@pytest.fixture
def setup(team, version):
    second = make_user("annotator2")
    team["project"].memberships.create(user=second, role="annotator")
    team["annotator2"] = second
    sign = labels.label_class_create(
        actor=team["lead"], project=team["project"], name="sign", kind="box"
    )
    images = list(version.items.order_by("image_id").values_list("image_id", flat=True))
    gold_image = team["project"].images.get(pk=images[0])
    gold = labels.annotation_create(actor=team["lead"], image=gold_image, label_class=sign,
                                    geometry=GOLD, status="submitted")  # fmt: skip
    svc.annotation_review(actor=team["reviewer"], annotation=gold, decision="accept")
    gold.refresh_from_db()
    queue = svc.queue_create(
        actor=team["lead"], project=team["project"], name="Signs", version=version
    )
    return {**team, "sign": sign, "gold": gold, "gold_image": gold_image, "queue": queue,
            "images": images}  # fmt: skip


def _until_honeypot(user, queue):
    """Work regular tasks (submitting nothing) until the honeypot comes; return it and the count."""
    done = 0
    while True:
        item = svc.queue_next(actor=user, queue=queue)
        if item.honeypot_id is not None:
            return item, done
        svc.queue_submit(actor=user, item=item)
        done += 1


def test_marking_a_honeypot_needs_a_known_answer_and_a_lead(setup):
    queue = setup["queue"]
    with pytest.raises(ApplicationError, match="has no accepted annotations"):
        queue_add_honeypots(actor=setup["lead"], queue=queue, image_ids=[setup["images"][1]])
    with pytest.raises(Forbidden):
        queue_add_honeypots(actor=setup["annotator"], queue=queue, image_ids=[setup["images"][0]])
    with pytest.raises(ApplicationError, match="Not images of this project"):
        queue_add_honeypots(actor=setup["lead"], queue=queue, image_ids=[999999])
    # A task someone has started cannot become a honeypot.
    started = svc.queue_next(actor=setup["annotator"], queue=queue)
    assert started.image_id == setup["gold_image"].pk
    with pytest.raises(ApplicationError, match="someone has started"):
        queue_add_honeypots(actor=setup["lead"], queue=queue, image_ids=[started.image_id])
    assert not Honeypot.objects.exists()


def test_an_untouched_task_becomes_a_honeypot_spread_into_the_queue(setup):
    queue = setup["queue"]
    [honeypot] = queue_add_honeypots(
        actor=setup["lead"], queue=queue, image_ids=[setup["gold_image"].pk]
    )
    assert honeypot.gold == [{"label_class": setup["sign"].pk, "kind": "box",
                              "geometry": {"box": [10.0, 10.0, 40.0, 40.0]}}]  # fmt: skip
    # The regular task of that image left the queue; 8 remain at positions 1..8.
    assert not QueueItem.objects.filter(queue=queue, image=setup["gold_image"]).exists()
    assert honeypot.position == 4
    assert (
        queue_add_honeypots(actor=setup["lead"], queue=queue, image_ids=[honeypot.image_id]) == []
    )


def test_each_annotator_gets_each_honeypot_once_and_is_scored_against_the_gold(setup):
    queue, gold = setup["queue"], setup["gold"]
    queue_add_honeypots(actor=setup["lead"], queue=queue, image_ids=[setup["gold_image"].pk])
    a, b = setup["annotator"], setup["annotator2"]

    item, before = _until_honeypot(a, queue)
    assert before >= 1  # interleaved, not first
    assert list(task_annotations(item=item)) == []  # the gold is not shown
    # [12, 10, 40, 40] against the gold [10, 10, 40, 40]: IoU 38·40 / 42·40 ≈ 0.90.
    labels.annotation_create(
        actor=a, image=item.image, label_class=setup["sign"], geometry=[12, 10, 40, 40]
    )
    done = svc.queue_submit(actor=a, item=item)
    assert done.status == "done"
    assert TaskSubmission.objects.get(item=item).honeypot_score == pytest.approx(38 / 42)

    item_b, _ = _until_honeypot(b, queue)
    assert item_b.pk != item.pk and item_b.image_id == item.image_id
    wrong = labels.annotation_create(actor=b, image=item_b.image, label_class=setup["sign"],
                                     geometry=[200, 200, 20, 20])  # fmt: skip
    svc.queue_submit(actor=b, item=item_b)
    assert TaskSubmission.objects.get(item=item_b).honeypot_score == 0.0

    # The annotators' answers are out of the labels, with a revision saying why ...
    wrong.refresh_from_db()
    assert wrong.deleted and wrong.revisions.order_by("-version").first().action == "honeypot"
    live = Annotation.objects.filter(image=setup["gold_image"], deleted=False)
    assert list(live) == [gold]
    # ... and the gold is as it was.
    fresh = Annotation.objects.get(pk=gold.pk)
    assert (fresh.status, fresh.version, fresh.geometry) == (
        "accepted",
        gold.version,
        gold.geometry,
    )

    # Never a second time: the rest of the queue holds no more honeypot tasks for them.
    for user in (a, b):
        while (nxt := svc.queue_next(actor=user, queue=queue)) is not None:
            assert nxt.honeypot_id is None
            svc.queue_submit(actor=user, item=nxt)
    assert QueueItem.objects.filter(queue=queue, honeypot__isnull=False).count() == 2


def test_a_honeypot_task_stays_with_its_annotator_past_the_lease(setup):
    queue = setup["queue"]
    queue_add_honeypots(actor=setup["lead"], queue=queue, image_ids=[setup["gold_image"].pk])
    item, _ = _until_honeypot(setup["annotator"], queue)
    QueueItem.objects.filter(pk=item.pk).update(
        lease_expires_at=timezone.now() - timedelta(hours=1)
    )
    other = svc.queue_next(actor=setup["annotator2"], queue=queue)
    assert other.pk != item.pk
    assert svc.queue_next(actor=setup["annotator"], queue=queue).pk == item.pk


def test_a_rejection_on_the_image_never_reopens_a_honeypot_task(setup):
    queue = setup["queue"]
    queue_add_honeypots(actor=setup["lead"], queue=queue, image_ids=[setup["gold_image"].pk])
    item, _ = _until_honeypot(setup["lead"], queue)  # the gold's author answers it
    svc.queue_submit(actor=setup["lead"], item=item)
    svc.annotation_review(actor=setup["reviewer"], annotation=setup["gold"], decision="reject",
                          comment="Recheck")  # fmt: skip
    assert QueueItem.objects.get(pk=item.pk).status == "done"


def test_honeypots_through_the_api(api, setup):
    base = f"/api/v1/projects/{setup['project'].slug}/queues/{setup['queue'].pk}"
    body = {"image_ids": [setup["gold_image"].pk]}
    assert (
        api(setup["annotator"]).post(f"{base}/honeypots/", body, format="json").status_code == 403
    )
    assert api(setup["outsider"]).post(f"{base}/honeypots/", body, format="json").status_code == 404
    r = api(setup["lead"]).post(f"{base}/honeypots/", body, format="json")
    assert r.status_code == 201 and r.json()[0]["image"] == setup["gold_image"].pk
    assert api(setup["annotator"]).get(f"{base}/honeypots/").status_code == 403
    assert len(api(setup["reviewer"]).get(f"{base}/honeypots/").json()) == 1
    r = api(setup["lead"]).post(f"{base}/honeypots/", {"image_ids": [setup["images"][2]]},
                                format="json")  # fmt: skip
    assert r.status_code == 400 and "no accepted annotations" in r.json()["error"]["message"]
    # To its annotator a honeypot task looks like any other.
    client = api(setup["annotator"])
    slug = setup["project"].slug
    for _ in range(9):
        task = client.post(f"/api/v1/projects/{slug}/queues/{setup['queue'].pk}/next/").json()
        assert "honeypot" not in task and task["annotations"] == []
        client.post(f"/api/v1/projects/{slug}/queue-items/{task['id']}/submit/")
    assert TaskSubmission.objects.filter(honeypot_score__isnull=False).count() == 1


def test_annotators_cannot_read_or_change_the_gold_anywhere(setup, api):
    queue_add_honeypots(
        actor=setup["lead"], queue=setup["queue"], image_ids=[setup["gold_image"].pk]
    )
    base = f"/api/v1/projects/{setup['project'].slug}"
    gold = setup["gold"]
    annotator = api(setup["annotator"])
    assert annotator.get(f"{base}/images/{setup['gold_image'].pk}/annotations/").json() == []
    assert annotator.get(f"{base}/annotations/{gold.pk}/").status_code == 404
    assert annotator.get(f"{base}/annotations/{gold.pk}/history/").status_code == 404
    moved = annotator.patch(f"{base}/annotations/{gold.pk}/", {"version": gold.version,
                            "geometry": [0, 0, 5, 5]}, format="json")  # fmt: skip
    assert moved.status_code == 404
    from django.test import Client

    browser = Client()
    browser.force_login(setup["annotator"])
    page = browser.get(f"/p/{setup['project'].slug}/images/{setup['gold_image'].pk}/")
    assert page.status_code == 200 and page.context["annotations"] == []
    # Reviewers and leads still see it; the annotator's own work on the image stays theirs.
    assert [a["id"] for a in api(setup["reviewer"]).get(
        f"{base}/images/{setup['gold_image'].pk}/annotations/").json()] == [gold.pk]  # fmt: skip
    own = annotator.post(f"{base}/images/{setup['gold_image'].pk}/annotations/",
                         {"label_class": setup["sign"].pk, "geometry": [1, 1, 4, 4]}, format="json")  # fmt: skip
    assert [a["id"] for a in annotator.get(
        f"{base}/images/{setup['gold_image'].pk}/annotations/").json()] == [own.json()["id"]]  # fmt: skip
