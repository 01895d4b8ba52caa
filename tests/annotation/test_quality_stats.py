"""Quality statistics per annotator and per queue: service, API and the stats page."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from annotation.models import Annotation, TaskSubmission
from annotation.services import labels
from annotation.services import queues as svc
from annotation.services.quality_control import queue_add_honeypots
from annotation.services.quality_stats import project_quality_stats, queue_stats
from tests.factories import make_user


@pytest.fixture
def scenario(team, version):
    """Two annotators on a 2-per-image queue of two images plus one honeypot, reviewed.

    - image 1: boxes [0,0,10,10] (a) and [5,0,10,10] (b): agreement 1/3; a accepted, b rejected.
    - image 2: both [0,0,10,10]: agreement 1; both accepted.
    - honeypot (gold [10,10,40,40]): a answers it exactly, b misses it.
    - a works for 30 minutes, b for an hour; three submissions each.
    """
    a, b = team["annotator"], make_user("annotator2")
    team["project"].memberships.create(user=b, role="annotator")
    sign = labels.label_class_create(
        actor=team["lead"], project=team["project"], name="sign", kind="box"
    )
    ids = list(version.items.order_by("image_id").values_list("image_id", flat=True))
    gold_image = team["project"].images.get(pk=ids[0])
    gold = labels.annotation_create(actor=team["lead"], image=gold_image, label_class=sign,
                                    geometry=[10, 10, 40, 40], status="submitted")  # fmt: skip
    svc.annotation_review(actor=team["reviewer"], annotation=gold, decision="accept")
    queue = svc.queue_create(actor=team["lead"], project=team["project"], name="Consensus",
                             image_ids=ids[1:3], annotators_per_image=2)  # fmt: skip
    queue_add_honeypots(actor=team["lead"], queue=queue, image_ids=[gold_image.pk])
    drawn: dict = {}
    plan = {
        a: {ids[1]: [0, 0, 10, 10], ids[2]: [0, 0, 10, 10], gold_image.pk: [10, 10, 40, 40]},
        b: {ids[1]: [5, 0, 10, 10], ids[2]: [0, 0, 10, 10], gold_image.pk: [200, 200, 20, 20]},
    }
    for user in (a, b):
        while (item := svc.queue_next(actor=user, queue=queue)) is not None:
            drawn[user, item.image_id] = labels.annotation_create(
                actor=user, image=item.image, label_class=sign,
                geometry=plan[user][item.image_id],
            )  # fmt: skip
            svc.queue_submit(actor=user, item=item)
    t0 = timezone.now() - timedelta(days=1)
    for user, minutes in ((a, 30), (b, 60)):
        rows = list(TaskSubmission.objects.filter(annotator=user).order_by("id"))
        assert len(rows) == 3
        for n, row in enumerate(rows):
            row.leased_at = t0 + timedelta(minutes=minutes * n / 3)
            row.submitted_at = t0 + timedelta(minutes=minutes * (n + 1) / 3)
            row.save()
    review = team["reviewer"]
    for user, image_id, decision in ((a, ids[1], "accept"), (b, ids[1], "reject"),
                                     (a, ids[2], "accept"), (b, ids[2], "accept")):  # fmt: skip
        annotation = Annotation.objects.get(pk=drawn[user, image_id].pk)
        svc.annotation_review(actor=review, annotation=annotation, decision=decision,
                              comment="Off by five pixels")  # fmt: skip
    return {**team, "annotator2": b, "queue": queue}


def test_queue_and_annotator_numbers_of_a_known_scenario(scenario):
    stats = queue_stats(user=scenario["lead"], queue=scenario["queue"])
    q = stats["queue"]
    assert q["items"] == 4
    assert q["by_status"] == {"todo": 1, "in_progress": 0, "submitted": 1, "done": 2}
    assert q["done_percent"] == 50.0
    assert q["agreement"] == pytest.approx(2 / 3) and q["agreement_images"] == 2
    assert (q["honeypots"], q["honeypot_answers"], q["honeypot_accuracy"]) == (1, 2, 0.5)
    a, b = stats["annotators"]
    assert (a["username"], b["username"]) == ("annotator", "annotator2")
    assert a["submitted"] == b["submitted"] == 3
    assert a["active_hours"] == pytest.approx(0.5) and a["throughput"] == pytest.approx(6.0)
    assert b["active_hours"] == pytest.approx(1.0) and b["throughput"] == pytest.approx(3.0)
    assert (a["accepted"], a["rejected"], a["acceptance_rate"]) == (2, 0, 1.0)
    assert (b["accepted"], b["rejected"], b["acceptance_rate"]) == (1, 1, 0.5)
    assert a["agreement"] == pytest.approx(2 / 3) and a["agreement_images"] == 2
    assert b["agreement"] == pytest.approx(2 / 3)
    assert (a["honeypots"], a["honeypots_correct"], a["honeypot_accuracy"]) == (1, 1, 1.0)
    assert (b["honeypots"], b["honeypots_correct"], b["honeypot_accuracy"]) == (1, 0, 0.0)
    assert a["honeypot_mean_iou"] == 1.0 and b["honeypot_mean_iou"] == 0.0


def test_annotators_never_see_honeypot_numbers(scenario):
    stats = queue_stats(user=scenario["annotator"], queue=scenario["queue"])
    assert stats["queue"]["honeypots"] is None
    assert all(
        r["honeypot_accuracy"] is None and r["honeypots"] is None for r in stats["annotators"]
    )
    assert stats["annotators"][0]["throughput"] == pytest.approx(6.0)  # the rest is shared


def test_project_wide_numbers(scenario):
    stats = project_quality_stats(user=scenario["reviewer"], project=scenario["project"])
    assert [q["name"] for q in stats["queues"]] == ["Consensus"]
    rows = {r["username"]: r for r in stats["annotators"]}
    # Project-wide, the gold's acceptance counts for its author (the lead).
    assert rows["lead"]["accepted"] == 1 and rows["lead"]["submitted"] == 0
    assert rows["annotator"]["honeypot_accuracy"] == 1.0


def test_stats_api_is_scoped_to_members(api, scenario):
    base = f"/api/v1/projects/{scenario['project'].slug}"
    qid = scenario["queue"].pk
    r = api(scenario["lead"]).get(f"{base}/queues/{qid}/stats/")
    assert r.status_code == 200
    body = r.json()
    assert body["queue"]["done_percent"] == 50.0 and body["honeypot_pass"] == 0.5
    assert [row["throughput"] for row in body["annotators"]] == [pytest.approx(6), pytest.approx(3)]
    assert (
        api(scenario["annotator"])
        .get(f"{base}/queues/{qid}/stats/")
        .json()["queue"]["honeypot_accuracy"]
        is None
    )
    assert api(scenario["outsider"]).get(f"{base}/queues/{qid}/stats/").status_code == 404
    assert api(scenario["outsider"]).get(f"{base}/quality/").status_code == 404
    other = f"/api/v1/projects/{scenario['other'].slug}/queues/{qid}/stats/"
    assert api(scenario["outsider"]).get(other).status_code == 404  # not through their project
    project = api(scenario["viewer"]).get(f"{base}/quality/").json()
    assert project["queues"][0]["agreement"] == pytest.approx(2 / 3)
    assert api().get(f"{base}/quality/").status_code == 401


def test_stats_page_draws_the_charts_from_the_numbers(client, scenario):
    url = f"/p/{scenario['project'].slug}/queues/{scenario['queue'].pk}/stats/"
    client.force_login(scenario["lead"])
    r = client.get(url)
    assert r.status_code == 200
    html = r.content.decode()
    figures = {f["id"]: f["figure"] for f in r.context["figures"]}
    assert set(figures) == {
        "chart-throughput", "chart-acceptance", "chart-agreement", "chart-honeypots"
    }  # fmt: skip
    assert figures["chart-throughput"]["data"][0]["x"] == ["annotator", "annotator2"]
    assert figures["chart-throughput"]["data"][0]["y"] == [pytest.approx(6), pytest.approx(3)]
    assert figures["chart-acceptance"]["data"][0]["y"] == [100.0, 50.0]
    assert figures["chart-honeypots"]["data"][0]["y"] == [100.0, 0.0]
    embedded = json.loads(
        html.split('id="quality-figures" type="application/json">')[1].split("<")[0]
    )
    assert [f["id"] for f in embedded] == list(figures)
    assert settings.PLOTLY_JS in html and "50.0%" in html  # done, in the summary
    client.force_login(scenario["annotator"])
    r = client.get(url)
    assert r.status_code == 200 and "chart-honeypots" not in r.content.decode()
    client.force_login(scenario["outsider"])
    assert client.get(url).status_code == 404
    assert (
        client.get(f"/p/{scenario['other'].slug}/queues/{scenario['queue'].pk}/stats/").status_code
        == 404
    )


def test_user_names_in_charts_are_escaped():
    from annotation.charts import annotator_bar_figure

    figure = annotator_bar_figure([{"username": "<b>x</b>", "n": 2.0}], "n", "N <i>")
    assert figure["data"][0]["x"] == ["&lt;b&gt;x&lt;/b&gt;"]
    assert figure["layout"]["title"]["text"] == "N &lt;i&gt;"
