"""Queues with leases, submission and review (annotation/services/queues.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Annotation, QueueItem
from annotation.services import labels
from annotation.services import queues as svc
from studio.errors import ApplicationError, Forbidden
from tests.factories import make_user


@pytest.fixture
def queue(team, version):
    second = make_user("annotator2")
    team["project"].memberships.create(user=second, role="annotator")
    team["annotator2"] = second
    return svc.queue_create(actor=team["lead"], project=team["project"], name="Boxes", version=version,
                            instructions="Box every sign", lease_minutes=10)  # fmt: skip


def test_each_task_goes_to_one_annotator_and_leases_expire(team, queue):
    a = svc.queue_next(actor=team["annotator"], queue=queue)
    b = svc.queue_next(actor=team["annotator2"], queue=queue)
    assert a.pk != b.pk and a.position == 0 and b.position == 1
    assert svc.queue_next(actor=team["annotator"], queue=queue).pk == a.pk  # still theirs
    QueueItem.objects.filter(pk=a.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken = svc.queue_next(actor=team["reviewer"], queue=queue)
    assert taken.pk == a.pk and taken.assignee == team["reviewer"]
    with pytest.raises(Forbidden):
        svc.queue_next(actor=team["viewer"], queue=queue)
    with pytest.raises(ApplicationError, match="not yours"):
        svc.queue_submit(actor=team["annotator"], item=taken)


def test_submit_review_reject_returns_work_to_its_author(team, queue):
    sign = labels.label_class_create(
        actor=team["lead"], project=team["project"], name="sign", kind="box"
    )
    item = svc.queue_next(actor=team["annotator"], queue=queue)
    ann = labels.annotation_create(
        actor=team["annotator"], image=item.image, label_class=sign, geometry=[1, 1, 10, 10]
    )
    svc.queue_submit(actor=team["annotator"], item=item)
    ann.refresh_from_db()
    assert ann.status == "submitted" and QueueItem.objects.get(pk=item.pk).status == "submitted"
    with pytest.raises(Forbidden):
        svc.annotation_review(actor=team["annotator"], annotation=ann, decision="accept")
    with pytest.raises(ApplicationError, match="Say why"):
        svc.annotation_review(actor=team["reviewer"], annotation=ann, decision="reject")
    svc.annotation_review(
        actor=team["reviewer"], annotation=ann, decision="reject", comment="Box is too small"
    )
    returned = QueueItem.objects.get(pk=item.pk)
    assert returned.status == "todo" and returned.returned_to == team["annotator"]
    # Only its author gets it back.
    other = svc.queue_next(actor=team["annotator2"], queue=queue)
    assert other.pk != item.pk
    again = svc.queue_next(actor=team["annotator"], queue=queue)
    assert again.pk == item.pk
    fixed = labels.annotation_update(
        actor=team["annotator"],
        annotation=ann,
        expected_version=ann.version + 1,
        geometry=[1, 1, 30, 30],
        status="draft",
    )
    svc.queue_submit(actor=team["annotator"], item=again)
    fixed.refresh_from_db()
    svc.annotation_review(actor=team["lead"], annotation=fixed, decision="accept")
    assert Annotation.objects.get(pk=ann.pk).status == "accepted"
    assert QueueItem.objects.get(pk=item.pk).status == "done"
    assert [r.decision for r in Annotation.objects.get(pk=ann.pk).reviews.all()] == [
        "reject",
        "accept",
    ]


def test_queues_need_images_and_assigned_members(team, version):
    with pytest.raises(ApplicationError, match="needs images"):
        svc.queue_create(actor=team["lead"], project=team["project"], name="Empty", image_ids=[])
    with pytest.raises(ApplicationError, match="members"):
        svc.queue_create(
            actor=team["lead"],
            project=team["project"],
            name="X",
            version=version,
            assignees=[team["outsider"]],
        )
    with pytest.raises(Forbidden):
        svc.queue_create(actor=team["reviewer"], project=team["project"], name="X", version=version)
    q = svc.queue_create(
        actor=team["lead"],
        project=team["project"],
        name="Mine",
        version=version,
        assignees=[team["annotator"]],
    )
    with pytest.raises(Forbidden, match="not assigned"):
        svc.queue_next(actor=team["reviewer"], queue=q)
    assert svc.queue_next(actor=team["annotator"], queue=q) is not None


def test_queue_flow_through_the_api(api, team, queue, version):
    base = f"/api/v1/projects/{team['project'].slug}"
    lead, ann, rev = api(team["lead"]), api(team["annotator"]), api(team["reviewer"])
    r = lead.post(
        f"{base}/queues/",
        {
            "name": "API queue",
            "dataset": version.dataset_id,
            "version": 1,
            "assignees": ["annotator"],
        },
        format="json",
    )
    assert r.status_code == 201 and r.json()["items"] == 9
    qid = r.json()["id"]
    assert (
        lead.post(
            f"{base}/queues/",
            {"name": "x", "image_ids": [1], "assignees": ["outsider"]},
            format="json",
        ).status_code
        == 400
    )
    sign = lead.post(
        f"{base}/label-classes/", {"name": "sign", "kind": "box"}, format="json"
    ).json()
    task = ann.post(f"{base}/queues/{qid}/next/").json()
    a = ann.post(
        f"{base}/images/{task['image']}/annotations/",
        {"label_class": sign["id"], "geometry": [1, 1, 5, 5]},
        format="json",
    ).json()
    assert ann.post(f"{base}/queue-items/{task['id']}/submit/").json()["status"] == "submitted"
    r = rev.post(f"{base}/annotations/{a['id']}/review/", {"decision": "accept"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert api(team["viewer"]).post(f"{base}/queues/{qid}/next/").status_code == 403
    assert api(team["outsider"]).post(f"{base}/queues/{qid}/next/").status_code == 404
    for _ in range(8):
        assert (
            ann.post(
                f"{base}/queue-items/{ann.post(f'{base}/queues/{qid}/next/').json()['id']}/submit/"
            ).status_code
            == 200
        )
    assert ann.post(f"{base}/queues/{qid}/next/").status_code == 204


def test_queue_list_counts_items_without_a_query_per_queue(
    api, team, queue, version, django_assert_max_num_queries
):
    from annotation.services import queues as queue_services

    for n in range(3):
        queue_services.queue_create(
            actor=team["lead"], project=team["project"], name=f"Q{n}", version=version
        )
    c = api(team["lead"])
    with django_assert_max_num_queries(8):
        body = c.get(f"/api/v1/projects/{team['project'].slug}/queues/").json()
    assert body["count"] == 4 and {q["items"] for q in body["results"]} == {9}


def test_submit_takes_machine_drafts_left_in_place_and_resubmits_rejected_work(team, queue):
    sign = labels.label_class_create(
        actor=team["lead"], project=team["project"], name="sign", kind="box"
    )
    first = queue.items.order_by("position").first().image
    # Another person's draft, made before the task was handed out (while it is held,
    # other annotators cannot change the image: see the lease test below).
    someone = labels.annotation_create(
        actor=team["annotator2"], image=first, label_class=sign, geometry=[3, 3, 8, 8]
    )
    item = svc.queue_next(actor=team["annotator"], queue=queue)
    assert item.image == first
    # A batch job started by the lead left a draft on the image.
    machine = labels.annotation_create(
        actor=team["lead"], image=item.image, label_class=sign, geometry=[2, 2, 8, 8],
        source=Annotation.Source.GRABCUT,
    )  # fmt: skip
    own = labels.annotation_create(
        actor=team["annotator"], image=item.image, label_class=sign, geometry=[1, 1, 9, 9]
    )
    svc.queue_submit(actor=team["annotator"], item=item)
    machine.refresh_from_db(), someone.refresh_from_db(), own.refresh_from_db()
    assert machine.status == own.status == "submitted" and someone.status == "draft"
    assert machine.author == team["annotator"]  # vouched for by whoever submitted it
    svc.annotation_review(actor=team["reviewer"], annotation=own, decision="reject", comment="x")
    again = svc.queue_next(actor=team["annotator"], queue=queue)
    assert again.pk == item.pk
    svc.queue_submit(actor=team["annotator"], item=again)  # kept as it was: sent back as it is
    own.refresh_from_db()
    assert own.status == "submitted"


def test_review_integrity_stale_decisions_stray_drafts_changed_accepted_work(team, queue, api):
    sign = labels.label_class_create(actor=team["lead"], project=team["project"], name="sign",
                                     kind="box", attributes={"side": ["left", "right"]})  # fmt: skip
    item = svc.queue_next(actor=team["annotator"], queue=queue)
    ann = labels.annotation_create(actor=team["annotator"], image=item.image, label_class=sign,
                                   geometry=[1, 1, 9, 9], attributes={"side": "left"})  # fmt: skip
    svc.queue_submit(actor=team["annotator"], item=item)
    ann.refresh_from_db()
    # A draft nobody will submit (drawn by the reviewer on the review canvas).
    labels.annotation_create(
        actor=team["reviewer"], image=item.image, label_class=sign, geometry=[2, 2, 3, 3]
    )
    base = f"/api/v1/projects/{team['project'].slug}/annotations/{ann.pk}"
    stale = api(team["lead"]).post(f"{base}/review/", {"decision": "reject", "comment": "no",
                                                        "version": ann.version - 1}, format="json")  # fmt: skip
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale_version"
    ok = api(team["reviewer"]).post(f"{base}/review/",
                                    {"decision": "accept", "version": ann.version}, format="json")  # fmt: skip
    assert ok.status_code == 200 and ok.json()["status"] == "accepted"
    assert QueueItem.objects.get(pk=item.pk).status == "done"  # the stray draft does not block
    # A colleague's page loaded before that decision cannot overturn it.
    late = api(team["lead"]).post(f"{base}/review/", {"decision": "reject", "comment": "no",
                                                       "version": ann.version}, format="json")  # fmt: skip
    assert late.status_code == 409
    # Changing accepted work sends it back to review, and its author stays its author.
    ann.refresh_from_db()
    sign.attributes = {"side": ["up", "down"]}  # the schema changed since
    sign.save()
    moved = labels.annotation_update(
        actor=team["reviewer"], annotation=ann, expected_version=ann.version, geometry=[1, 1, 20, 9]
    )
    assert moved.status == "submitted" and moved.author == team["annotator"]
    # Restoring the accepted revision brings the shape back, not the decision.
    accepted = moved.revisions.filter(action="review").last()
    restored = labels.annotation_restore(actor=team["lead"], revision=accepted)
    assert restored.geometry["box"] == [1, 1, 9, 9] and restored.status == "submitted"


def test_after_a_lease_runs_out_only_the_new_holder_changes_the_image(api, team, queue):
    """A lease runs out and the queue hands the image to the next person: the one who had
    it can no longer change it (423, with who holds it), the new holder and reviewers can."""
    sign = labels.label_class_create(
        actor=team["lead"], project=team["project"], name="sign", kind="box"
    )
    item = svc.queue_next(actor=team["annotator"], queue=queue)
    mine = labels.annotation_create(
        actor=team["annotator"], image=item.image, label_class=sign, geometry=[1, 1, 9, 9]
    )
    QueueItem.objects.filter(pk=item.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    taken = svc.queue_next(actor=team["annotator2"], queue=queue)
    assert taken.pk == item.pk
    base = f"/api/v1/projects/{team['project'].slug}"
    late = api(team["annotator"])
    r = late.patch(f"{base}/annotations/{mine.pk}/", {"version": 1, "geometry": [1, 1, 5, 5]},
                   format="json")  # fmt: skip
    assert r.status_code == 423 and r.json()["error"]["code"] == "locked"
    assert "annotator2 is working on this image" in r.json()["error"]["message"]
    r = late.post(f"{base}/images/{item.image_id}/annotations/",
                  {"label_class": sign.pk, "geometry": [2, 2, 4, 4]}, format="json")  # fmt: skip
    assert r.status_code == 423
    assert late.delete(f"{base}/annotations/{mine.pk}/?version=1").status_code == 423
    mine.refresh_from_db()
    assert (mine.version, mine.geometry, mine.deleted) == (1, {"box": [1.0, 1.0, 9.0, 9.0]}, False)
    # The holder and a reviewer can.
    r = api(team["annotator2"]).patch(f"{base}/annotations/{mine.pk}/",
                                      {"version": 1, "geometry": [1, 1, 6, 6]}, format="json")  # fmt: skip
    assert r.status_code == 200, r.content
    r = api(team["reviewer"]).patch(f"{base}/annotations/{mine.pk}/",
                                    {"version": 2, "geometry": [1, 1, 7, 7]}, format="json")  # fmt: skip
    assert r.status_code == 200, r.content
    # Once the holder submits, the image is free again.
    svc.queue_submit(actor=team["annotator2"], item=taken)
    r = late.patch(f"{base}/annotations/{mine.pk}/", {"version": 3, "geometry": [1, 1, 8, 8]},
                   format="json")  # fmt: skip
    assert r.status_code == 200, r.content
