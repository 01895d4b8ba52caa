"""Consensus queues: N annotators per image, their agreement, and the majority merge."""

from __future__ import annotations

import numpy as np
import pytest

from annotation import geometry as geo
from annotation.models import Annotation, ConsensusResult, QueueItem
from annotation.services import labels
from annotation.services import queues as svc
from annotation.services.quality_control import consensus_merge
from studio.errors import ApplicationError, Conflict, Forbidden
from tests.factories import make_user


@pytest.fixture
def people(team):
    second = make_user("annotator2")
    team["project"].memberships.create(user=second, role="annotator")
    team["annotator2"] = second
    return team


def _queue(team, version, n, count=None):
    ids = list(version.items.order_by("image_id").values_list("image_id", flat=True))
    return svc.queue_create(actor=team["lead"], project=team["project"], name=f"N={n}",
                            image_ids=ids[:count] if count else ids, annotators_per_image=n)  # fmt: skip


def _classes(team):
    box = labels.label_class_create(
        actor=team["lead"], project=team["project"], name="sign", kind="box"
    )
    mask = labels.label_class_create(
        actor=team["lead"], project=team["project"], name="road", kind="mask"
    )
    return box, mask


def _rect(image, x0, y0, x1, y1) -> dict:
    pixels = np.zeros((image.height, image.width), bool)
    pixels[y0:y1, x0:x1] = True
    return geo.mask_from_array(pixels)


def _work(user, queue, **shapes):
    """Take the next task, draw the given {label_class: geometry} list, submit it."""
    item = svc.queue_next(actor=user, queue=queue)
    for label_class, geometry in shapes.get("draw", []):
        labels.annotation_create(
            actor=user, image=item.image, label_class=label_class, geometry=geometry
        )
    return svc.queue_submit(actor=user, item=item)


def test_each_image_goes_to_n_different_annotators_and_never_twice_to_one(people, version):
    queue = _queue(people, version, 2, count=3)
    assert queue.items.count() == 6
    a, b = people["annotator"], people["annotator2"]
    first = svc.queue_next(actor=a, queue=queue)
    assert svc.queue_next(actor=a, queue=queue).pk == first.pk  # still theirs
    other = svc.queue_next(actor=b, queue=queue)
    assert other.image_id == first.image_id and other.replica != first.replica
    svc.queue_submit(actor=a, item=first)
    nxt = svc.queue_next(actor=a, queue=queue)
    assert nxt.image_id != first.image_id  # not the other replica of the image a labelled
    svc.queue_submit(actor=a, item=nxt)
    svc.queue_submit(actor=b, item=other)
    taken: dict[int, list[int]] = {a.pk: [first.image_id, nxt.image_id], b.pk: [other.image_id]}
    for user in [a, b, a, b, a, b]:
        item = svc.queue_next(actor=user, queue=queue)
        if item is None:
            continue
        taken[user.pk].append(item.image_id)
        svc.queue_submit(actor=user, item=item)
    assert svc.queue_next(actor=a, queue=queue) is None
    assert svc.queue_next(actor=b, queue=queue) is None
    for images in taken.values():
        assert len(images) == len(set(images)) == 3  # each image once per person
    per_image = {}
    for item in QueueItem.objects.filter(queue=queue):
        per_image.setdefault(item.image_id, set()).add(item.assignee_id)
    assert all(users == {a.pk, b.pk} for users in per_image.values())


def test_a_rejected_replica_goes_back_to_its_author_only(people, version):
    box, _ = _classes(people)
    queue = _queue(people, version, 2, count=1)
    a, b = people["annotator"], people["annotator2"]
    ia = svc.queue_next(actor=a, queue=queue)
    ib = svc.queue_next(actor=b, queue=queue)
    ann_a = labels.annotation_create(
        actor=a, image=ia.image, label_class=box, geometry=[0, 0, 9, 9]
    )
    labels.annotation_create(actor=b, image=ib.image, label_class=box, geometry=[0, 0, 9, 9])
    svc.queue_submit(actor=a, item=ia)
    svc.queue_submit(actor=b, item=ib)
    ann_a.refresh_from_db()
    svc.annotation_review(
        actor=people["reviewer"], annotation=ann_a, decision="reject", comment="Too small"
    )
    ia.refresh_from_db()
    ib.refresh_from_db()
    assert ia.status == "todo" and ia.returned_to == a
    assert ib.status == "submitted" and ib.assignee == b  # b's replica is untouched
    assert svc.queue_next(actor=people["reviewer"], queue=queue) is None  # not for anyone else
    assert svc.queue_next(actor=a, queue=queue).pk == ia.pk


def test_queue_validates_annotators_per_image(people, version):
    with pytest.raises(ApplicationError, match="between 1 and 10"):
        _queue(people, version, 11)
    with pytest.raises(ApplicationError, match="at least that many"):
        svc.queue_create(actor=people["lead"], project=people["project"], name="x", version=version,
                         assignees=[people["annotator"]], annotators_per_image=2)  # fmt: skip
    with pytest.raises(ApplicationError, match="there are 4"):  # lead, reviewer, 2 annotators
        _queue(people, version, 5)


def test_agreement_of_two_rectangles_is_their_iou(people, version):
    box, mask = _classes(people)
    queue = _queue(people, version, 2, count=1)
    a, b = people["annotator"], people["annotator2"]
    image = svc.queue_next(actor=a, queue=queue).image
    # Boxes [0,0,10,10] and [5,0,10,10]: 50 shared pixels of 150, IoU 1/3. Masks identical: 1.
    _work(a, queue, draw=[(box, [0, 0, 10, 10]), (mask, _rect(image, 20, 20, 40, 30))])
    assert not ConsensusResult.objects.exists()  # not until every replica is in
    _work(b, queue, draw=[(box, [5, 0, 10, 10]), (mask, _rect(image, 20, 20, 40, 30))])
    result = ConsensusResult.objects.get(queue=queue, image=image)
    assert result.per_class[str(box.pk)] == pytest.approx(1 / 3)
    assert result.per_class[str(mask.pk)] == pytest.approx(1.0)
    assert result.agreement == pytest.approx(2 / 3)
    assert result.per_annotator == {
        str(a.pk): pytest.approx(2 / 3),
        str(b.pk): pytest.approx(2 / 3),
    }
    assert sorted(result.annotators) == sorted([a.pk, b.pk])


def test_a_class_only_one_annotator_used_counts_as_disagreement(people, version):
    box, mask = _classes(people)
    queue = _queue(people, version, 2, count=1)
    a, b = people["annotator"], people["annotator2"]
    _work(a, queue, draw=[(box, [0, 0, 10, 10])])
    _work(b, queue, draw=[(box, [0, 0, 10, 10])])
    assert ConsensusResult.objects.get().agreement == pytest.approx(1.0)
    queue2 = _queue(people, version, 2, count=2)
    _work(a, queue2, draw=[(box, [0, 0, 10, 10])])
    item = svc.queue_next(actor=b, queue=queue2)
    labels.annotation_create(actor=b, image=item.image, label_class=box, geometry=[0, 0, 10, 10])
    labels.annotation_create(
        actor=b, image=item.image, label_class=mask, geometry=_rect(item.image, 0, 0, 4, 4)
    )
    svc.queue_submit(actor=b, item=item)
    result = ConsensusResult.objects.get(queue=queue2)
    assert result.per_class == {str(box.pk): 1.0, str(mask.pk): 0.0}
    assert result.agreement == pytest.approx(0.5)


def test_merge_keeps_the_pixels_a_majority_marked(people, version):
    box, mask = _classes(people)
    queue = _queue(people, version, 3, count=1)
    a, b, c = people["annotator"], people["annotator2"], people["reviewer"]
    image = svc.queue_next(actor=a, queue=queue).image
    _work(a, queue, draw=[(mask, _rect(image, 0, 0, 20, 10)), (box, [100, 100, 10, 10])])
    _work(b, queue, draw=[(mask, _rect(image, 10, 0, 30, 10)), (box, [100, 100, 10, 10])])
    with pytest.raises(ApplicationError, match="Not all 3 annotators"):
        consensus_merge(actor=people["lead"], queue=queue, image=image)
    _work(c, queue, draw=[(mask, _rect(image, 15, 0, 40, 10))])
    originals = list(Annotation.objects.filter(image=image, deleted=False))
    assert len(originals) == 5
    with pytest.raises(Forbidden):
        consensus_merge(actor=a, queue=queue, image=image)

    merged = consensus_merge(actor=people["lead"], queue=queue, image=image)
    by_class = {m.label_class_id: m for m in merged}
    assert set(by_class) == {box.pk, mask.pk} and len(merged) == 2
    got = geo.to_mask(by_class[mask.pk].geometry, "mask", image.width, image.height)
    want = np.zeros((image.height, image.width), bool)
    want[0:10, 10:30] = True  # columns marked by at least 2 of 3: 10–19 (a, b), 15–29 (b, c)
    assert (got == want).all()
    assert by_class[box.pk].geometry == {"box": [100.0, 100.0, 10.0, 10.0]}  # 2 of 3 drew it
    for m in merged:
        assert m.status == "submitted" and m.source == "human" and m.author == people["lead"]
        assert m.source_detail.startswith("consensus of annotator, annotator2, reviewer")
    for original in originals:  # kept, with their geometry, as superseded history
        before = original.geometry
        original.refresh_from_db()
        assert original.deleted and original.geometry == before
        assert original.revisions.order_by("-version").first().action == "supersede"
    assert ConsensusResult.objects.get().merged_by == people["lead"]
    with pytest.raises(Conflict, match="merged already"):
        consensus_merge(actor=people["lead"], queue=queue, image=image)

    for m in merged:
        svc.annotation_review(actor=people["reviewer"], annotation=m, decision="accept")
    assert set(QueueItem.objects.filter(queue=queue).values_list("status", flat=True)) == {"done"}


def test_consensus_through_the_api(api, people, version):
    base = f"/api/v1/projects/{people['project'].slug}"
    lead, a, b = api(people["lead"]), api(people["annotator"]), api(people["annotator2"])
    r = lead.post(f"{base}/queues/", {"name": "C", "image_ids": [version.items.first().image_id],
                                        "annotators_per_image": 2}, format="json")  # fmt: skip
    assert r.status_code == 201 and r.json()["annotators_per_image"] == 2 and r.json()["items"] == 2
    qid = r.json()["id"]
    bad = lead.post(f"{base}/queues/", {"name": "C", "image_ids": [1], "annotators_per_image": 0},
                    format="json")  # fmt: skip
    assert bad.status_code == 400
    sign = lead.post(
        f"{base}/label-classes/", {"name": "sign", "kind": "box"}, format="json"
    ).json()
    ta = a.post(f"{base}/queues/{qid}/next/").json()
    tb = b.post(f"{base}/queues/{qid}/next/").json()
    assert ta["image"] == tb["image"] and {ta["replica"], tb["replica"]} == {0, 1}
    mine = a.post(f"{base}/images/{ta['image']}/annotations/",
                  {"label_class": sign["id"], "geometry": [0, 0, 10, 10]}, format="json").json()  # fmt: skip
    b.post(f"{base}/images/{tb['image']}/annotations/",
           {"label_class": sign["id"], "geometry": [0, 0, 10, 20]}, format="json")  # fmt: skip
    # A consensus task shows only its annotator's own work.
    assert a.post(f"{base}/queues/{qid}/next/").json()["annotations"] == [mine["id"]]
    a.post(f"{base}/queue-items/{ta['id']}/submit/")
    b.post(f"{base}/queue-items/{tb['id']}/submit/")
    assert a.get(f"{base}/queues/{qid}/consensus/").status_code == 403
    rows = lead.get(f"{base}/queues/{qid}/consensus/").json()
    assert rows[0]["agreement"] == pytest.approx(0.5)
    assert api(people["outsider"]).get(f"{base}/queues/{qid}/consensus/").status_code == 404
    assert a.post(f"{base}/queues/{qid}/consensus/{ta['image']}/merge/").status_code == 403
    r = lead.post(f"{base}/queues/{qid}/consensus/{ta['image']}/merge/")
    assert r.status_code == 201 and r.json()[0]["geometry"] == [0.0, 0.0, 10.0, 20.0]
    assert lead.post(f"{base}/queues/{qid}/consensus/{ta['image']}/merge/").status_code == 409


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_never_lease_one_person_two_replicas(team, version):
    """Real concurrent transactions (PostgreSQL): a double click gets one task, not two."""
    import contextlib
    import threading

    from django.db import connection, connections

    # PostgreSQL runs the calls truly at once (CI); SQLite serialises writers, so there the
    # calls take turns and the test checks the same outcome without the race.
    turns = threading.Lock() if connection.vendor != "postgresql" else contextlib.nullcontext()
    second = make_user("annotator2")
    team["project"].memberships.create(user=second, role="annotator")
    queue = _queue(team, version, 2, count=2)
    users = [team["annotator"], team["annotator"], second, second, team["reviewer"]]
    barrier = threading.Barrier(len(users))
    got: list[tuple[int, int, int]] = []

    def take(user):
        try:
            barrier.wait()
            with turns:
                item = svc.queue_next(actor=user, queue=queue)
            got.append((user.pk, item.pk, item.image_id))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(users)
    per_user: dict[int, set] = {}
    for user_id, item_id, _ in got:
        per_user.setdefault(user_id, set()).add(item_id)
    assert all(len(items) == 1 for items in per_user.values())  # the same task both times
    held = QueueItem.objects.filter(queue=queue, status="in_progress")
    assert held.count() == 3
    assert len({(i.assignee_id, i.image_id) for i in held}) == 3


def test_review_page_asks_for_the_merge_before_accepting_replicas(people, version, client):
    box, mask = _classes(people)
    queue = _queue(people, version, 2, count=1)
    a, b = people["annotator"], people["annotator2"]
    image = svc.queue_next(actor=a, queue=queue).image
    _work(a, queue, draw=[(mask, _rect(image, 20, 20, 40, 30))])
    _work(b, queue, draw=[(mask, _rect(image, 22, 20, 40, 30))])
    client.force_login(people["reviewer"])
    url = f"/p/{people['project'].slug}/review/images/{image.pk}/"
    page = client.get(url)
    assert page.context["unmerged"] is not None and "accept-all" not in page.content.decode()
    merged = client.post(f"{url}merge/{queue.pk}/", follow=True)
    assert "Merged into 1 annotation" in merged.content.decode()
    assert merged.context["unmerged"] is None and 'id="accept-all"' in merged.content.decode()
    live = Annotation.objects.filter(image=image, deleted=False)
    assert live.count() == 1 and live.get().status == "submitted"
    client.force_login(a)
    assert client.post(f"{url}merge/{queue.pk}/").status_code == 403  # reviewers and leads only
    assert Annotation.objects.filter(image=image, deleted=False).count() == 1


def test_merged_polygons_are_the_majority_pixels_exactly(people, version):
    polygon = labels.label_class_create(
        actor=people["lead"], project=people["project"], name="lane", kind="polygon"
    )
    queue = _queue(people, version, 2, count=1)
    a, b = people["annotator"], people["annotator2"]
    image = svc.queue_next(actor=a, queue=queue).image
    thin = [10, 10, 60, 10, 60, 11, 10, 11]  # one pixel high: no area between pixel centres
    tilted = [100, 100, 180, 120, 150, 190]
    _work(a, queue, draw=[(polygon, thin), (polygon, tilted)])
    _work(b, queue, draw=[(polygon, thin), (polygon, tilted)])
    merged = consensus_merge(actor=people["lead"], queue=queue, image=image)
    assert len(merged) == 2
    want = geo.to_mask({"parts": [thin, tilted]}, "polygon", image.width, image.height)
    got = np.zeros_like(want)
    for m in merged:
        got |= geo.to_mask(m.geometry, "polygon", image.width, image.height)
    assert (got == want).all()
