"""Queue, task, review and statistics pages as each role sees and uses them.

Forms and buttons only for roles that can use them (a direct request by another role is a
403), who made each annotation, honeypots and consensus on the pages, queues limited to
some classes, "Returned to you" and Skip.
"""

from __future__ import annotations

import pytest
from django.test import Client

from annotation.models import Annotation, AnnotationQueue, Honeypot, QueueItem, TaskSkip
from annotation.services import labels
from annotation.services import queues as svc
from annotation.services.batch_preannotation import preannotate_start
from annotation.services.quality_control import queue_add_honeypots
from studio.errors import ApplicationError
from tests.factories import make_user


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def setup(team, version):
    second = make_user("annotator2")
    team["project"].memberships.create(user=second, role="annotator")
    project = team["project"]
    sign = labels.label_class_create(actor=team["lead"], project=project, name="sign", kind="box")
    car = labels.label_class_create(actor=team["lead"], project=project, name="car", kind="box")
    return {**team, "annotator2": second, "sign": sign, "car": car, "version": version,
            "slug": project.slug}  # fmt: skip


def _queue(s, **kwargs) -> AnnotationQueue:
    return svc.queue_create(
        actor=s["lead"], project=s["project"], name=kwargs.pop("name", "Signs"),
        version=s["version"], **kwargs,
    )  # fmt: skip


# -- forms only for the roles that can use them ----------------------------------------------


def test_each_role_sees_only_the_forms_it_can_submit_and_is_refused_the_rest(setup):
    s, slug = setup, setup["slug"]
    queue = _queue(s)
    queues_url, labels_url = f"/p/{slug}/queues/", f"/p/{slug}/labels/"
    lead = _client(s["lead"]).get(queues_url).content.decode()
    assert "New queue" in lead and ("Make honeypots" in lead or "Honeypots (0)" in lead)
    annotator = _client(s["annotator"]).get(queues_url).content.decode()
    assert "New queue" not in annotator and "Pre-annotate" not in annotator
    assert "Honeypots" not in annotator and "Start annotating" in annotator
    viewer = _client(s["viewer"]).get(queues_url).content.decode()
    assert "Start annotating" not in viewer and "You are a viewer" in viewer
    # Direct requests by roles that cannot use the form: 403, nothing written.
    form = {"name": "Sneaky", "version": s["version"].pk, "lease_minutes": 30,
            "annotators_per_image": 1}  # fmt: skip
    for role in ("annotator", "reviewer", "viewer"):
        assert _client(s[role]).post(queues_url, form).status_code == 403
        assert _client(s[role]).post(labels_url, {"name": "x", "kind": "box"}).status_code == 403
        assert _client(s[role]).post(f"{queues_url}{queue.pk}/honeypots/").status_code == 403
    assert not AnnotationQueue.objects.filter(name="Sneaky").exists()
    assert _client(s["viewer"]).post(f"{queues_url}{queue.pk}/next/").status_code == 403
    assert _client(s["annotator"]).post(f"{queues_url}{queue.pk}/preannotate/").status_code == 403
    for role in ("annotator", "viewer"):
        assert _client(s[role]).get(f"/p/{slug}/review/").status_code == 403
        image = queue.items.first().image_id
        assert _client(s[role]).get(f"/p/{slug}/review/images/{image}/").status_code == 403
    # Queues for named assignees: others see who may take them, not a button that fails.
    _queue(s, name="Mine", assignees=[s["annotator2"]])
    page = _client(s["annotator"]).get(queues_url).content.decode()
    assert "Only its assignees take tasks" in page


def test_exchange_page_offers_export_and_import_only_to_roles_that_may(setup, dataset):
    url = f"/p/{setup['slug']}/datasets/{dataset.pk}/exchange/"
    annotator = _client(setup["annotator"]).get(url).content.decode()
    assert "Annotators cannot export" in annotator and 'value="export"' not in annotator
    assert 'value="import"' in annotator and "Create missing classes" not in annotator
    assert 'value="skip"' in annotator and 'value="replace"' not in annotator  # leads only
    viewer = _client(setup["viewer"]).get(url).content.decode()
    assert "Viewers cannot import" in viewer and 'value="import"' not in viewer
    assert 'value="export"' in viewer
    lead = _client(setup["lead"]).get(url).content.decode()
    assert "Create missing classes" in lead and 'value="replace"' in lead
    version = setup["version"].number
    refused = _client(setup["annotator"]).post(
        url, {"action": "export", "export-version": version, "export-format": "coco"}
    )
    assert refused.status_code == 403
    refused = _client(setup["viewer"]).post(url, {"action": "import"})
    assert refused.status_code == 403


# -- who made each annotation ------------------------------------------------------------------


def test_review_shows_who_made_each_annotation_and_its_machine_source(setup):
    s = setup
    queue = _queue(s)
    item = svc.queue_next(actor=s["annotator"], queue=queue)
    labels.annotation_create(actor=s["annotator"], image=item.image, label_class=s["sign"],
                             geometry=[1, 1, 10, 10])  # fmt: skip
    labels.annotation_create(actor=s["lead"], image=item.image, label_class=s["sign"],
                             geometry=[20, 20, 10, 10], source="sam")  # fmt: skip
    svc.queue_submit(actor=s["annotator"], item=item)
    reviewer = _client(s["reviewer"])
    listing = reviewer.get(f"/p/{s['slug']}/review/").content.decode()
    # Submitting vouched for the lead's SAM draft: it is the annotator's now, still marked SAM.
    assert "by annotator (1)" in listing and "by annotator · Segment Anything draft (1)" in listing
    # The canvas names every author, and the source of machine drafts.
    page = reviewer.get(f"/p/{s['slug']}/review/images/{item.image_id}/")
    config = page.context["config"]
    assert config["people"][str(s["annotator"].pk)] == "annotator"
    assert config["sources"]["sam"] == "Segment Anything"
    imported = Annotation.objects.filter(image=item.image).last()
    Annotation.objects.filter(pk=imported.pk).update(source="import", author=s["lead"])
    listing = reviewer.get(f"/p/{s['slug']}/review/").content.decode()
    assert "by lead · imported (1)" in listing and "Segment Anything" not in listing


# -- honeypots and consensus on the pages --------------------------------------------------------


def _accepted(s, image_id):
    image = s["project"].images.get(pk=image_id)
    gold = labels.annotation_create(actor=s["lead"], image=image, label_class=s["sign"],
                                    geometry=[10, 10, 40, 40], status="submitted")  # fmt: skip
    svc.annotation_review(actor=s["reviewer"], annotation=gold, decision="accept")
    return image


def test_a_lead_marks_honeypots_on_the_queues_page_and_reviewers_see_scores(setup):
    s = setup
    queue = _queue(s)
    image = _accepted(s, queue.items.order_by("position").first().image_id)
    lead = _client(s["lead"])
    page = lead.get(f"/p/{s['slug']}/queues/").content.decode()
    panel = f"/p/{s['slug']}/queues/{queue.pk}/honeypots/candidates/"
    assert f'hx-get="{panel}"' in page and image.original_name not in page  # loaded on open
    candidates = lead.get(panel).content.decode()
    assert "Make honeypots" in candidates and image.original_name in candidates
    assert _client(s["reviewer"]).get(panel).status_code == 403  # leads add honeypots
    done = lead.post(f"/p/{s['slug']}/queues/{queue.pk}/honeypots/", {"image_ids": [image.pk]})
    assert done.status_code == 302
    honeypot = Honeypot.objects.get(queue=queue)
    assert honeypot.image == image and honeypot.gold[0]["geometry"]["box"] == [10, 10, 40, 40]
    # Work the queue until the honeypot comes, then submit a near answer.
    while True:
        item = svc.queue_next(actor=s["annotator"], queue=queue)
        if item.honeypot_id:
            break
        svc.queue_submit(actor=s["annotator"], item=item)
    labels.annotation_create(actor=s["annotator"], image=item.image, label_class=s["sign"],
                             geometry=[10, 10, 40, 40])  # fmt: skip
    svc.queue_submit(actor=s["annotator"], item=item)
    stats = f"/p/{s['slug']}/queues/{queue.pk}/stats/"
    reviewer = _client(s["reviewer"]).get(stats)
    images = reviewer.context["images"]
    assert images["honeypots"][0]["answers"][0]["annotator"] == "annotator"
    assert images["honeypots"][0]["answers"][0]["score"] == pytest.approx(1.0)
    html = reviewer.content.decode()
    assert "Honeypot scores" in html and image.original_name in html and "<script>" not in html
    # Annotators learn nothing: no honeypot table, no names, no scores, no gold.
    annotator = _client(s["annotator"]).get(stats)
    html = annotator.content.decode()
    assert annotator.context["images"] is None
    assert "Honeypot" not in html and "honeypot-images" not in html
    assert (
        "Honeypots" not in _client(s["annotator"]).get(f"/p/{s['slug']}/queues/").content.decode()
    )


def test_consensus_is_set_on_the_form_and_agreement_shown_per_image(setup):
    s, slug = setup, setup["slug"]
    response = _client(s["lead"]).post(f"/p/{slug}/queues/", {
        "name": "Pairs", "version": s["version"].pk, "lease_minutes": 30,
        "annotators_per_image": 2, "assignees": ["annotator", "annotator2"],
    })  # fmt: skip
    assert response.status_code == 302
    queue = AnnotationQueue.objects.get(name="Pairs")
    assert queue.annotators_per_image == 2 and queue.items.count() == 2 * s["version"].image_count
    image = None
    for user, box in ((s["annotator"], [0, 0, 20, 20]), (s["annotator2"], [0, 0, 20, 10])):
        item = svc.queue_next(actor=user, queue=queue)
        image = image or item.image_id
        assert item.image_id == image
        labels.annotation_create(actor=user, image=item.image, label_class=s["sign"], geometry=box)
        svc.queue_submit(actor=user, item=item)
    stats = _client(s["reviewer"]).get(f"/p/{slug}/queues/{queue.pk}/stats/")
    row = stats.context["images"]["consensus"][0]
    assert row["image"].pk == image and row["agreement"] == pytest.approx(0.5)
    assert [name for name, _ in row["annotators"]] == ["annotator", "annotator2"]
    listing = _client(s["reviewer"]).get(f"/p/{slug}/review/").content.decode()
    assert "Consensus of 2: agreement 0.50" in listing
    assert (
        _client(s["annotator"]).get(f"/p/{slug}/queues/{queue.pk}/stats/").context["images"] is None
    )


# -- queues limited to some classes ---------------------------------------------------------------


def test_a_queue_limited_to_some_classes_offers_and_accepts_only_those(setup, api):
    s, slug = setup, setup["slug"]
    response = _client(s["lead"]).post(f"/p/{slug}/queues/", {
        "name": "Only signs", "version": s["version"].pk, "lease_minutes": 30,
        "annotators_per_image": 1, "label_classes": [s["sign"].pk],
    })  # fmt: skip
    assert response.status_code == 302
    queue = AnnotationQueue.objects.get(name="Only signs")
    assert list(queue.label_classes.all()) == [s["sign"]]
    item = svc.queue_next(actor=s["annotator"], queue=queue)
    page = _client(s["annotator"]).get(f"/p/{slug}/tasks/{item.pk}/")
    config = page.context["config"]
    assert [c["name"] for c in config["classes"]] == ["sign"]
    assert [c["name"] for c in config["other_classes"]] == ["car"]
    assert "This queue takes only" in page.content.decode()
    # Writes through the task are held to the queue's classes, in the API as in the service.
    client = api(s["annotator"])
    url = f"/api/v1/projects/{slug}/images/{item.image_id}/annotations/"
    refused = client.post(
        url, {"label_class": s["car"].pk, "geometry": [1, 1, 5, 5]}, format="json"
    )
    assert refused.status_code == 400 and "takes only sign" in refused.json()["error"]["message"]
    made = client.post(url, {"label_class": s["sign"].pk, "geometry": [1, 1, 5, 5]}, format="json")
    assert made.status_code == 201
    moved = client.patch(f"/api/v1/projects/{slug}/annotations/{made.json()['id']}/",
                         {"version": 1, "label_class": s["car"].pk}, format="json")  # fmt: skip
    assert moved.status_code == 400
    # Outside the task (a lead fixing the image later) every class is allowed.
    svc.queue_submit(actor=s["annotator"], item=item)
    labels.annotation_create(actor=s["lead"], image=item.image, label_class=s["car"],
                             geometry=[1, 1, 5, 5])  # fmt: skip
    # Batch pre-annotation of the queue into a class it does not take is refused.
    circle = labels.label_class_create(actor=s["lead"], project=s["project"], name="circle",
                                       kind="mask")  # fmt: skip
    with pytest.raises(ApplicationError, match="takes only sign"):
        preannotate_start(actor=s["lead"], label_class=circle, mode="boxes_to_masks", queue=queue)
    # The API sets and reports the classes too.
    lead = api(s["lead"])
    created = lead.post(f"/api/v1/projects/{slug}/queues/", {
        "name": "API signs", "dataset": s["version"].dataset_id, "version": s["version"].number,
        "label_classes": [s["car"].pk],
    }, format="json")  # fmt: skip
    assert created.status_code == 201 and created.json()["label_classes"] == [s["car"].pk]
    other = lead.post(f"/api/v1/projects/{slug}/queues/",
                      {"name": "x", "image_ids": [item.image_id], "label_classes": [999999]},
                      format="json")  # fmt: skip
    assert other.status_code == 404


# -- returned to me, and skip ---------------------------------------------------------------------


def test_returned_work_is_listed_with_the_reviewers_comment_and_comes_first(setup):
    s, slug = setup, setup["slug"]
    queue = _queue(s)
    item = svc.queue_next(actor=s["annotator"], queue=queue)
    ann = labels.annotation_create(actor=s["annotator"], image=item.image, label_class=s["sign"],
                                   geometry=[1, 1, 10, 10])  # fmt: skip
    svc.queue_submit(actor=s["annotator"], item=item)
    assert (
        "Returned to you" not in _client(s["annotator"]).get(f"/p/{slug}/queues/").content.decode()
    )
    ann.refresh_from_db()
    svc.annotation_review(actor=s["reviewer"], annotation=ann, decision="reject",
                          comment="The sign is bigger")  # fmt: skip
    page = _client(s["annotator"]).get(f"/p/{slug}/queues/").content.decode()
    assert "Returned to you" in page and "The sign is bigger" in page
    assert item.image.original_name in page and "reviewer" in page and "Fix it" in page
    # Nobody else sees it in their list.
    assert (
        "Returned to you" not in _client(s["annotator2"]).get(f"/p/{slug}/queues/").content.decode()
    )
    # Take a fresh task first: the returned one still comes before the queue's order.
    nxt = _client(s["annotator"]).post(f"/p/{slug}/queues/{queue.pk}/next/")
    assert nxt.url == f"/p/{slug}/tasks/{item.pk}/"
    svc.queue_submit(actor=s["annotator"], item=QueueItem.objects.get(pk=item.pk))
    assert (
        "Returned to you" not in _client(s["annotator"]).get(f"/p/{slug}/queues/").content.decode()
    )


def test_a_returned_task_shows_every_rejection_in_queries_that_do_not_grow_with_them(setup):
    """The task page reads the reviewer's comments on the annotator's rejected work through
    one scoped selector: no query per rejected annotation (the page once filtered a
    prefetch again for each of them, and read each one's class on its own)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    s, slug = setup, setup["slug"]
    queue = _queue(s)
    work = []
    for count in (1, 4):  # two tasks, both submitted before any review: one annotation, four
        item = svc.queue_next(actor=s["annotator"], queue=queue)
        work += [
            (item, n, labels.annotation_create(actor=s["annotator"], image=item.image,
                                               label_class=s["sign"], geometry=[1 + n, 1, 10, 10]))
            for n in range(count)
        ]  # fmt: skip
        svc.queue_submit(actor=s["annotator"], item=item)
    for item, n, ann in work:
        ann.refresh_from_db()
        svc.annotation_review(actor=s["reviewer"], annotation=ann, decision="reject",
                              comment=f"Fix {item.pk}.{n}")  # fmt: skip
    client = _client(s["annotator"])
    queries = {}
    for _ in range(2):  # both come back first, one at a time
        url = client.post(f"/p/{slug}/queues/{queue.pk}/next/").url
        item = QueueItem.objects.get(pk=int(url.rstrip("/").rsplit("/", 1)[1]))
        with CaptureQueriesContext(connection) as captured:
            page = client.get(url).content.decode()
        rejected = Annotation.objects.filter(image=item.image, status="rejected").count()
        assert page.count("Rejected: <b>sign</b>") == rejected
        assert all(f"Fix {item.pk}.{n}" in page for n in range(rejected))
        queries[rejected] = len(captured)
        svc.queue_submit(actor=s["annotator"], item=item)
    assert sorted(queries) == [1, 4] and queries[4] == queries[1], queries


def test_the_queue_list_reads_honeypots_and_counts_for_all_queues_at_once(setup):
    """Per queue row the page adds no query, for a reviewer or a lead: honeypots, task counts
    and each queue's classes are read for every queue at once, not again for each row, and
    the images that could become honeypots load only when a lead opens that panel."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    s, slug = setup, setup["slug"]
    gold = s["version"].items.order_by("image_id").first().image
    ann = labels.annotation_create(actor=s["lead"], image=gold, label_class=s["sign"],
                                   geometry=[1, 1, 10, 10], status="submitted")  # fmt: skip
    svc.annotation_review(actor=s["reviewer"], annotation=ann, decision="accept")

    def queries(role: str) -> tuple[int, str]:
        with CaptureQueriesContext(connection) as captured:
            page = _client(s[role]).get(f"/p/{slug}/queues/").content.decode()
        return len(captured), page

    first = _queue(s, name="Q0", label_classes=[s["sign"]])
    queue_add_honeypots(actor=s["lead"], queue=first, image_ids=[gold.pk])
    one = {role: queries(role)[0] for role in ("lead", "reviewer")}
    for n in range(1, 4):
        queue = _queue(s, name=f"Q{n}", label_classes=[s["sign"], s["car"]])
        queue_add_honeypots(actor=s["lead"], queue=queue, image_ids=[gold.pk])
    four = {role: queries(role) for role in ("lead", "reviewer")}
    assert four["reviewer"][0] == one["reviewer"], (one, four)
    assert four["lead"][0] == one["lead"], (one, four)
    page = four["reviewer"][1]
    assert page.count("1 honeypot") == 4 and page.count(gold.original_name) >= 4


def test_skip_releases_the_task_and_others_get_the_skipped_image_first(setup):
    s, slug = setup, setup["slug"]
    queue = _queue(s)
    first = svc.queue_next(actor=s["annotator"], queue=queue)
    client = _client(s["annotator"])
    page = client.get(f"/p/{slug}/tasks/{first.pk}/").content.decode()
    assert 'id="skip"' in page
    skipped = client.post(f"/p/{slug}/tasks/{first.pk}/skip/")
    following = QueueItem.objects.get(queue=queue, assignee=s["annotator"], status="in_progress")
    assert following.pk != first.pk and skipped.url == f"/p/{slug}/tasks/{following.pk}/"
    first.refresh_from_db()
    assert first.status == "todo" and first.assignee is None and first.lease_expires_at is None
    assert TaskSkip.objects.filter(item=first, annotator=s["annotator"]).count() == 1
    # Someone else gets the skipped image first; the skipper, only when nothing else is left.
    assert svc.queue_next(actor=s["annotator2"], queue=queue).pk == first.pk
    svc.queue_skip(actor=s["annotator2"], item=first)
    svc.queue_submit(actor=s["annotator"], item=following)
    assert svc.queue_next(actor=s["annotator"], queue=queue).pk != first.pk
    # Once only skipped images are left, they do come back.
    QueueItem.objects.filter(queue=queue).exclude(pk=first.pk).update(status="done")
    assert svc.queue_next(actor=s["annotator"], queue=queue).pk == first.pk
    # Not yours: refused; viewers: 403.
    with pytest.raises(ApplicationError, match="not yours"):
        svc.queue_skip(actor=s["annotator2"], item=first)
    assert _client(s["viewer"]).post(f"/p/{slug}/tasks/{first.pk}/skip/").status_code == 403


def test_skipping_the_last_task_says_so_instead_of_handing_it_back(setup):
    s, slug = setup, setup["slug"]
    queue = svc.queue_create(actor=s["lead"], project=s["project"], name="One",
                             image_ids=[s["version"].items.first().image_id])  # fmt: skip
    item = svc.queue_next(actor=s["annotator"], queue=queue)
    response = _client(s["annotator"]).post(f"/p/{slug}/tasks/{item.pk}/skip/", follow=True)
    assert "Nothing else is left for you" in response.content.decode()
    assert QueueItem.objects.get(pk=item.pk).status == "todo"


def test_a_skipped_honeypot_is_closed_unscored_and_not_offered_again(setup):
    s = setup
    queue = _queue(s)
    image = _accepted(s, queue.items.order_by("position").first().image_id)
    queue_add_honeypots(actor=s["lead"], queue=queue, image_ids=[image.pk])
    while True:
        item = svc.queue_next(actor=s["annotator"], queue=queue)
        if item.honeypot_id:
            break
        svc.queue_submit(actor=s["annotator"], item=item)
    draft = labels.annotation_create(actor=s["annotator"], image=item.image,
                                     label_class=s["sign"], geometry=[1, 1, 5, 5])  # fmt: skip
    svc.queue_skip(actor=s["annotator"], item=item)
    item.refresh_from_db()
    assert item.status == "done" and not item.submissions.exists()
    draft.refresh_from_db()
    assert draft.deleted  # the image keeps only its gold
    live = Annotation.objects.filter(image=item.image, deleted=False)
    assert list(live.values_list("status", flat=True)) == ["accepted"]
    nxt = svc.queue_next(actor=s["annotator"], queue=queue)
    assert nxt is None or nxt.honeypot_id is None


def test_skip_through_the_api(setup, api):
    s, slug = setup, setup["slug"]
    queue = _queue(s)
    client = api(s["annotator"])
    first = client.post(f"/api/v1/projects/{slug}/queues/{queue.pk}/next/").json()
    response = client.post(f"/api/v1/projects/{slug}/queue-items/{first['id']}/skip/")
    assert response.status_code == 200 and response.json()["id"] != first["id"]
    assert TaskSkip.objects.get().item_id == first["id"]
    again = client.post(f"/api/v1/projects/{slug}/queue-items/{first['id']}/skip/")
    assert again.status_code == 400  # no longer theirs
    assert (
        api(s["viewer"])
        .post(f"/api/v1/projects/{slug}/queue-items/{response.json()['id']}/skip/")
        .status_code
        == 403
    )


def test_a_class_limited_queue_takes_gold_of_its_classes_only(setup):
    s = setup
    queue = _queue(s, label_classes=[s["sign"]])
    outside = s["project"].images.exclude(pk__in=queue.items.values("image_id"))
    image = s["project"].images.get(pk=queue.items.order_by("position").first().image_id)
    car = labels.annotation_create(actor=s["lead"], image=image, label_class=s["car"],
                                   geometry=[1, 1, 9, 9], status="submitted")  # fmt: skip
    svc.annotation_review(actor=s["reviewer"], annotation=car, decision="accept")
    assert not outside.exists()  # the version is the queue: candidates come from its images
    panel = _client(s["lead"]).get(f"/p/{s['slug']}/queues/{queue.pk}/honeypots/candidates/")
    text = panel.content.decode()
    assert "No image can become one yet" in text and image.original_name not in text
    with pytest.raises(ApplicationError, match="of the classes this queue takes"):
        queue_add_honeypots(actor=s["lead"], queue=queue, image_ids=[image.pk])
    _accepted(s, image.pk)  # a sign too
    (honeypot,) = queue_add_honeypots(actor=s["lead"], queue=queue, image_ids=[image.pk])
    assert [g["label_class"] for g in honeypot.gold] == [s["sign"].pk]


# -- review findings: bounded ids, and a class a queue is limited to ---------------------------


def test_honeypot_ids_beyond_a_column_are_a_message_not_a_500(setup):
    queue = _queue(setup)
    url = f"/p/{setup['slug']}/queues/{queue.pk}/honeypots/"
    client = Client(raise_request_exception=False)
    client.force_login(setup["lead"])
    for bad in (str(2**70), "abc", "-3"):
        r = client.post(url, {"image_ids": [bad]}, follow=True)
        assert r.status_code == 200, bad
        assert "Choose the images to use as honeypots." in r.content.decode()
    assert not queue.honeypots.exists()


def test_a_class_a_queue_is_limited_to_is_not_deleted_behind_the_queues_back(setup, api):
    queue = _queue(setup, label_classes=[setup["sign"]])
    r = api(setup["lead"]).delete(
        f"/api/v1/projects/{setup['slug']}/label-classes/{setup['sign'].pk}/"
    )
    assert (
        r.status_code == 409 and "'Signs' takes only some classes" in r.json()["error"]["message"]
    )
    assert list(queue.label_classes.all()) == [setup["sign"]]  # the restriction stands
    page = (
        _client(setup["lead"])
        .post(f"/p/{setup['slug']}/labels/", {"delete": setup["sign"].pk})
        .content.decode()
    )
    assert "1 queue takes only some classes, &#x27;sign&#x27; among them" in page
    # A class no queue names is deleted after the confirmation.
    r = _client(setup["lead"]).post(
        f"/p/{setup['slug']}/labels/", {"delete": setup["car"].pk, "confirm": "1"}
    )
    assert (
        r.status_code == 302 and not type(setup["car"]).objects.filter(pk=setup["car"].pk).exists()
    )
