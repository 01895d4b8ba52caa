"""The annotation flow in headless chromium, as its users do it.

A lead defines classes and a queue; an annotator opens "next task", clicks an object to get
a mask (GrabCut: no SAM checkpoint here), fixes it with the brush, undoes and redoes, and
submits; a reviewer rejects one annotation and accepts another; two people saving the same
annotation from stale pages get a 409 and the second edit is not written over the first.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation import geometry as geo
from annotation.models import Annotation, AnnotationQueue, QueueItem, ReviewDecision
from studio.ml.scenes import render_scene
from studio.models import DatasetVersion
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import PASSWORD, make_dataset, make_project, make_user, upload

pytestmark = [pytest.mark.e2e]

SEEDS = (18, 9, 10)


def _png(arr) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(arr).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def scenes(transactional_db):
    lead = make_user("lena")
    for name in ("ana", "bo", "rui"):
        make_user(name)
    from django.contrib.auth import get_user_model

    users = {u.username: u for u in get_user_model().objects.all()}
    project = make_project(lead, "Shapes", annotator=users["ana"], reviewer=users["rui"])
    project.memberships.create(user=users["bo"], role="annotator")
    dataset = make_dataset(project, lead, "Scenes")
    rendered = {f"scene-{seed}.png": render_scene(seed) for seed in SEEDS}
    job = upload_create(actor=lead, project=project, dataset=dataset,
                        files=[upload(name, _png(s.image)) for name, s in rendered.items()])  # fmt: skip
    job_run(job_id=job.pk)
    version = DatasetVersion.objects.get(dataset=dataset)
    images = {i.original_name: i for i in project.images.all()}
    return {"project": project, "version": version, "users": users, "scenes": rendered,
            "images": images}  # fmt: skip


def _login(browser, base: str, username: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def _to_screen(page, x: float, y: float) -> tuple[float, float]:
    return tuple(
        page.evaluate(
            """([x, y]) => { const w = window.studioCanvas.world;
                const r = document.getElementById('stage').getBoundingClientRect();
                return [r.left + w.x() + x * w.scaleX(), r.top + w.y() + y * w.scaleY()]; }""",
            [x, y],
        )
    )


def _settle(page) -> None:
    page.wait_for_function("() => window.studioCanvas !== undefined")
    page.evaluate("() => window.studioCanvas.settled()")


def _stroke(page, points) -> None:
    page.mouse.move(*_to_screen(page, *points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*_to_screen(page, *p), steps=4)
    page.mouse.up()
    _settle(page)


def _mask(annotation: Annotation) -> np.ndarray:
    image = annotation.image
    return geo.to_mask(annotation.geometry, annotation.kind, image.width, image.height)


def _iou(a, b) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _with_same_colour_neighbours(scene, target: np.ndarray) -> np.ndarray:
    """The target with the scene's objects that touch it in the same colour (which no
    colour-based tool can tell apart from it)."""
    from scipy import ndimage

    near = ndimage.binary_dilation(target, iterations=2)
    colour = scene.image[target].mean(0)
    out = target.copy()
    for other in scene.objects:
        if (other.mask & near & ~target).any() and np.abs(
            scene.image[other.mask].mean(0) - colour
        ).max() < 10:
            out |= other.mask
    return out


def test_lead_annotator_reviewer_flow(browser, live_server, scenes):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base, slug = live_server.url, scenes["project"].slug

    # The lead defines the schema and a queue.
    lead = _login(browser, base, "lena")
    lead.goto(f"{base}/p/{slug}/")
    lead.get_by_role("link", name="Label classes").click()
    lead.fill("#id_name", "shape")
    lead.select_option("#id_kind", "mask")
    lead.fill("#id_attributes", "occluded: no, yes")
    lead.get_by_role("button", name="Add class").click()
    lead.get_by_text("Added 'shape'.").wait_for()
    lead.fill("#id_name", "too dark")
    lead.select_option("#id_kind", "tag")
    lead.get_by_role("button", name="Add class").click()
    lead.get_by_text("Added 'too dark'.").wait_for()
    lead.get_by_role("link", name="Queues").click()
    lead.fill("#id_name", "Mask the shapes")
    lead.select_option("#id_version", str(scenes["version"].pk))
    lead.check("input[name=assignees][value=ana]")
    lead.check("input[name=assignees][value=bo]")
    lead.fill("#id_instructions", "Mask every shape.")
    lead.get_by_role("button", name="Create queue").click()
    lead.get_by_text("holds 3 tasks").wait_for()
    queue = AnnotationQueue.objects.get(name="Mask the shapes")

    # The annotator takes the next task and clicks the object to get its mask.
    ana = _login(browser, base, "ana")
    ana.goto(f"{base}/p/{slug}/queues/")
    ana.click("text=Start annotating")
    ana.wait_for_selector("#stage canvas")
    _settle(ana)
    item = QueueItem.objects.get(queue=queue, assignee=scenes["users"]["ana"])
    scene = scenes["scenes"][item.image.original_name]
    target = scene.objects[0].mask
    ys, xs = np.nonzero(target)
    ana.mouse.click(*_to_screen(ana, float(xs.mean()), float(ys.mean())))
    ana.wait_for_function("() => window.studioCanvas.state.anns.size === 1")
    _settle(ana)
    first = Annotation.objects.get(image=item.image)
    assert first.source == "grabcut" and first.status == "draft" and first.author.username == "ana"
    # The click takes the whole shape and little else. On this scene the circle touches a
    # square of the same colour, so one click takes both (a right-click on the square
    # would take it away: test_smart_clicks_go_out_in_order_and_the_last_one_wins).
    clicked = _mask(first)
    assert (clicked & target).sum() >= 0.95 * target.sum()
    assert _iou(clicked, _with_same_colour_neighbours(scene, target)) >= 0.9
    ana.screenshot(path=str(SCREENSHOTS / "annotate-smart-click.png"))

    # Fix it with the brush: a stroke from inside the object out to an empty corner.
    before = _mask(first)
    corner = (5.0, 5.0)
    assert not before[5, 5]
    ana.keyboard.press("r")
    _stroke(ana, [(float(xs.mean()), float(ys.mean())), corner])
    first.refresh_from_db()
    painted = _mask(first)
    assert first.version == 2 and painted[5, 5] and painted.sum() > before.sum()
    assert (painted | before).sum() == painted.sum()  # the brush only added pixels
    # What was added is the stroke: every pixel whose centre is within the brush radius of
    # the segment (16 screen px wide at this zoom), and nothing farther.
    radius = 16 / ana.evaluate("() => window.studioCanvas.world.scaleX()") / 2
    (ax, ay), (bx, by) = (float(xs.mean()), float(ys.mean())), corner
    yy, xx = np.mgrid[: painted.shape[0], : painted.shape[1]] + 0.5
    t = np.clip(
        ((xx - ax) * (bx - ax) + (yy - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2), 0, 1
    )
    distance = np.hypot(xx - (ax + t * (bx - ax)), yy - (ay + t * (by - ay)))
    added = painted & ~before
    assert distance[added].max() <= radius + 1.0
    assert painted[distance <= radius - 1.0].all()
    ana.screenshot(path=str(SCREENSHOTS / "annotate-brush.png"))

    # Undo brings the mask back exactly; redo paints it again. Both are new versions.
    ana.keyboard.press("Control+z")
    _settle(ana)
    first.refresh_from_db()
    assert np.array_equal(_mask(first), before) and first.version == 3
    ana.keyboard.press("Control+Shift+z")
    _settle(ana)
    first.refresh_from_db()
    assert np.array_equal(_mask(first), painted) and first.version == 4

    # Tag the image, then submit and get the next task.
    ana.get_by_role("button", name="+ too dark").click()
    _settle(ana)
    assert Annotation.objects.filter(image=item.image, kind="tag", deleted=False).count() == 1
    ana.click("#submit")
    ana.wait_for_url(lambda url: "/tasks/" in url and f"/tasks/{item.pk}/" not in url)
    _settle(ana)
    assert set(Annotation.objects.filter(image=item.image).values_list("status", flat=True)) == {
        "submitted"
    }
    second_item = QueueItem.objects.get(queue=queue, assignee=scenes["users"]["ana"],
                                        status="in_progress")  # fmt: skip
    second_scene = scenes["scenes"][second_item.image.original_name]
    sy, sx = np.nonzero(second_scene.objects[0].mask)
    ana.mouse.click(*_to_screen(ana, float(sx.mean()), float(sy.mean())))
    ana.wait_for_function("() => window.studioCanvas.state.anns.size === 1")
    _settle(ana)
    ana.keyboard.press("Control+Enter")
    ana.wait_for_url(lambda url: f"/tasks/{second_item.pk}/" not in url)
    second = Annotation.objects.get(image=second_item.image, deleted=False)
    assert second.status == "submitted"

    # The reviewer rejects the first image's mask with a comment and accepts the second.
    rui = _login(browser, base, "rui")
    rui.goto(f"{base}/p/{slug}/review/?queue={queue.pk}")
    rui.locator(".thumbs a").first.click()
    _settle(rui)
    assert f"/review/images/{item.image_id}/" in rui.url
    row = rui.locator(f".ann[data-id='{first.pk}']")
    # Each annotation names who made it, and the machine that drafted it.
    assert row.locator(".author").inner_text() == "by ana · GrabCut draft"
    row.get_by_role("button", name="Reject").click()
    row.locator("input.comment").fill("The brush stroke leaks into the background.")
    row.get_by_role("button", name="Reject").click()
    _settle(rui)
    first.refresh_from_db()
    assert first.status == "rejected"
    review = ReviewDecision.objects.get(annotation=first)
    assert review.reviewer.username == "rui" and "leaks" in review.comment
    assert QueueItem.objects.get(pk=item.pk).returned_to.username == "ana"
    rui.goto(f"{base}/p/{slug}/review/images/{second_item.image_id}/")
    _settle(rui)

    # Two people change the same annotation from pages loaded at the same version: the
    # second save answers 409 and the page shows the current state; nothing is overwritten.
    other = _login(browser, base, "lena")
    other.goto(f"{base}/p/{slug}/review/images/{second_item.image_id}/")
    _settle(other)
    second.refresh_from_db()
    loaded = second.version
    rui.keyboard.press("v")
    rui.locator(f".ann[data-id='{second.pk}'] .pick").click()
    rui.keyboard.press("r")
    _stroke(rui, [(5.0, 5.0), (20.0, 5.0)])
    second.refresh_from_db()
    saved_by_rui = second.geometry
    assert second.version == loaded + 1 and _mask(second)[5, 10]
    other.keyboard.press("v")
    other.locator(f".ann[data-id='{second.pk}'] .pick").click()
    other.keyboard.press("r")
    _stroke(other, [(5.0, 150.0), (20.0, 150.0)])
    other.get_by_text("Someone else changed this annotation").wait_for()
    second.refresh_from_db()
    assert (
        second.version == loaded + 1
        and second.geometry == saved_by_rui
        and not _mask(second)[150, 10]
    )
    other.wait_for_function(
        f"() => window.studioCanvas.state.anns.get({second.pk}).version === {loaded + 1}"
    )
    other.screenshot(path=str(SCREENSHOTS / "annotate-conflict.png"))

    rui.click("#accept-all")
    rui.wait_for_url(lambda url: f"/review/images/{second_item.image_id}/" not in url)
    second.refresh_from_db()
    assert second.status == "accepted"
    assert QueueItem.objects.get(pk=second_item.pk).status == "done"

    # The rejected task goes back to its author, with the reviewer's comment on the canvas:
    # once the task in hand is submitted, it is the next one.
    _settle(ana)
    ana.get_by_role("button", name="+ too dark").click()
    _settle(ana)
    ana.click("#submit")
    ana.get_by_text("leaks into the background").wait_for()
    assert f"/tasks/{item.pk}/" in ana.url
    ana.screenshot(path=str(SCREENSHOTS / "annotate-returned.png"))


def test_quick_edits_on_a_slow_network_queue_up_without_false_conflicts(
    browser, live_server, scenes
):
    """Edits made faster than the server answers go out one after another, each with the
    version the previous one produced: no 409 between one person's own edits, undo steps
    that all land, and one draft per smart-click sequence."""
    import time

    from annotation.services import labels

    project, lead = scenes["project"], scenes["users"]["lena"]
    box_class = labels.label_class_create(actor=lead, project=project, name="box", kind="box")
    shape = labels.label_class_create(actor=lead, project=project, name="shape", kind="mask")
    image = scenes["images"]["scene-18.png"]
    box = labels.annotation_create(actor=lead, image=image, label_class=box_class,
                                   geometry=[10, 10, 40, 30], status="submitted")  # fmt: skip
    page = _login(browser, live_server.url, "lena")

    def slow(route):
        time.sleep(0.4)  # every write answers late, as on a slow connection
        route.continue_()

    page.route("**/api/v1/**", slow)
    page.goto(f"{live_server.url}/p/{project.slug}/review/images/{image.pk}/")
    _settle(page)
    page.keyboard.press("v")
    page.mouse.click(*_to_screen(page, 30, 25))
    # Two drags of 20 px; the second starts before the first is saved, and the first save's
    # answer arrives while the second drag is under way (it must not drop the drag).
    page.mouse.move(*_to_screen(page, 30, 25))
    page.mouse.down()
    page.mouse.move(*_to_screen(page, 50, 25), steps=3)
    page.mouse.up()
    page.mouse.down()
    page.mouse.move(*_to_screen(page, 60, 25), steps=2)
    page.wait_for_function("() => document.getElementById('save-state').textContent === 'Saved'")
    page.mouse.move(*_to_screen(page, 70, 25), steps=2)
    page.mouse.up()
    _settle(page)
    box.refresh_from_db()
    assert box.version == 3  # both moves saved, in order
    assert box.geometry["box"] == pytest.approx([50, 10, 40, 30], abs=0.5)
    assert "Someone else" not in page.locator("#tool-hint").inner_text()
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")  # pressed while the first undo is still on its way
    page.wait_for_function("() => window.studioCanvas.state.undo.length === 0")
    _settle(page)
    box.refresh_from_db()
    assert box.geometry["box"] == [10, 10, 40, 30] and box.version == 5
    assert page.evaluate("() => window.studioCanvas.state.redo.length") == 2

    page.keyboard.press("s")
    page.click(f"button.class-pick[data-class-id='{shape.pk}']")
    obj = scenes["scenes"]["scene-18.png"].objects[0].mask
    ys, xs = np.nonzero(obj)
    for dx in (0, 3, -3):  # three clicks on the object, faster than each answer
        page.mouse.click(*_to_screen(page, float(xs.mean()) + dx, float(ys.mean())))
    _settle(page)  # waits for the delete of each replaced draft too (queued by the answers)
    drafts = Annotation.objects.filter(image=image, label_class=shape, deleted=False)
    assert drafts.count() == 1, list(drafts.values("id", "version"))
    assert "Someone else" not in page.locator("#tool-hint").inner_text()


def test_smart_clicks_go_out_in_order_and_the_last_one_wins(browser, live_server, scenes):
    """The canvas sends the clicks in the order made, with the draft they refine; the mask
    that comes back keeps every clicked pixel on its side (GrabCut, no SAM here)."""
    import json

    from annotation.services import labels

    project, lead = scenes["project"], scenes["users"]["lena"]
    shape = labels.label_class_create(actor=lead, project=project, name="shape", kind="mask")
    image = scenes["images"]["scene-18.png"]
    obj = scenes["scenes"]["scene-18.png"].objects[0].mask
    ys, xs = np.nonzero(obj)
    x, y = round(float(xs.mean())), round(float(ys.mean()))
    page = _login(browser, live_server.url, "lena")
    sent = []
    page.on("request", lambda r: sent.append(json.loads(r.post_data))
            if r.method == "POST" and r.url.endswith("/preannotate/") else None)  # fmt: skip
    page.goto(f"{live_server.url}/p/{project.slug}/review/images/{image.pk}/")
    _settle(page)
    page.keyboard.press("s")
    page.click(f"button.class-pick[data-class-id='{shape.pk}']")
    page.mouse.click(*_to_screen(page, x, y))
    _settle(page)
    first = Annotation.objects.get(image=image, label_class=shape, deleted=False)
    assert _mask(first)[y, x]
    page.mouse.click(*_to_screen(page, x + 8, y), button="right")  # exclude a part ...
    _settle(page)
    page.mouse.click(*_to_screen(page, x + 12, y))  # ... then take some of it back
    _settle(page)
    clicks = [{"x": x, "y": y, "positive": True}, {"x": x + 8, "y": y, "positive": False},
              {"x": x + 12, "y": y, "positive": True}]  # fmt: skip
    assert [b["clicks"] for b in sent] == [clicks[:1], clicks[:2], clicks]
    assert not any("positive" in b or "negative" in b for b in sent)  # not the old lists
    second = sent[2]["previous"]
    assert sent[1]["previous"] == first.pk and sent[1]["previous_clicks"] == 1
    assert sent[2]["previous_clicks"] == 2 and second != first.pk
    last = Annotation.objects.get(image=image, label_class=shape, deleted=False)
    mask = _mask(last)
    assert mask[y, x] and not mask[y, x + 8] and mask[y, x + 12]
    # One draft for the whole sequence: each answer replaced the draft it refined.
    assert not Annotation.objects.filter(pk__in=[first.pk, second], deleted=False).exists()


def test_a_lease_that_runs_out_is_shown_on_the_task(browser, live_server, scenes):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.services import labels, queues

    project, ana = scenes["project"], scenes["users"]["ana"]
    labels.label_class_create(actor=scenes["users"]["lena"], project=project, name="s", kind="mask")
    queue = queues.queue_create(actor=scenes["users"]["lena"], project=project, name="Q",
                                version=scenes["version"], lease_minutes=1)  # fmt: skip
    item = queues.queue_next(actor=ana, queue=queue)
    page = _login(browser, live_server.url, "ana")
    QueueItem.objects.filter(pk=item.pk).update(
        lease_expires_at=timezone.now() + timedelta(seconds=5)
    )
    page.goto(f"{live_server.url}/p/{project.slug}/tasks/{item.pk}/")
    assert page.locator("#lease").inner_text().startswith("lease 0:0")
    page.get_by_text("Your lease on this task ran out").wait_for(timeout=15_000)
    assert page.locator("#lease.warn").inner_text().startswith("lease ended")
    # The queue hands the image to Bo; Ana's next stroke is refused, naming who holds it.
    taken = queues.queue_next(actor=scenes["users"]["bo"], queue=queue)
    assert taken.pk == item.pk
    _settle(page)
    page.keyboard.press("1")
    page.keyboard.press("r")
    _stroke(page, [(10.0, 10.0), (30.0, 30.0)])
    page.wait_for_function(
        "() => document.getElementById('save-state').textContent === 'Not saved'"
    )
    assert "bo is working on this image" in page.locator("#tool-hint").inner_text()
    assert not Annotation.objects.filter(image=item.image).exists()


def _ana_on_a_box_queue(browser, live_server, scenes):
    """Lena makes a queue that takes only boxes; Ana opens her first task on its canvas."""
    from annotation.services import labels
    from annotation.services import queues as svc

    base, slug = live_server.url, scenes["project"].slug
    users, project = scenes["users"], scenes["project"]
    box = labels.label_class_create(actor=users["lena"], project=project, name="box", kind="box")
    queue = svc.queue_create(actor=users["lena"], project=project, name="Boxes",
                             version=scenes["version"], label_classes=[box])  # fmt: skip
    ana = _login(browser, base, "ana")
    ana.goto(f"{base}/p/{slug}/queues/")
    ana.click("text=Start annotating")
    ana.wait_for_selector("#stage canvas")
    _settle(ana)
    return ana, box, queue, QueueItem.objects.get(queue=queue, assignee=users["ana"])


def test_skip_moves_on_and_returned_work_is_listed(browser, live_server, scenes):
    from annotation.services import labels
    from annotation.services import queues as svc

    base, slug, users = live_server.url, scenes["project"].slug, scenes["users"]
    ana, box, queue, first = _ana_on_a_box_queue(browser, live_server, scenes)
    assert ana.locator("#classes .class-pick").count() == 1  # the queue takes only boxes
    ana.click("#skip")
    ana.get_by_text(f"Skipped {first.image.original_name}").wait_for()
    assert f"/tasks/{first.pk}/" not in ana.url
    first.refresh_from_db()
    assert first.status == "todo" and first.assignee is None
    # Bo gets the skipped image first.
    assert svc.queue_next(actor=users["bo"], queue=queue).pk == first.pk
    made = labels.annotation_create(actor=users["bo"], image=first.image, label_class=box,
                                    geometry=[2, 2, 20, 20])  # fmt: skip
    svc.queue_submit(actor=users["bo"], item=first)
    made.refresh_from_db()
    svc.annotation_review(actor=users["rui"], annotation=made, decision="reject",
                          comment="Box the whole shape")  # fmt: skip
    bo = _login(browser, base, "bo")
    bo.goto(f"{base}/p/{slug}/queues/")
    returned = bo.locator("#returned")
    assert "Box the whole shape" in returned.inner_text()
    returned.get_by_role("button", name="Fix it").click()
    bo.wait_for_url(f"{base}/p/{slug}/tasks/{first.pk}/")
    bo.get_by_text("Box the whole shape").first.wait_for()


def test_skip_lets_the_change_under_way_reach_the_server(browser, live_server, scenes):
    """A box drawn just before Skip is saved: the page waits for its request, then leaves."""
    ana, box, _, item = _ana_on_a_box_queue(browser, live_server, scenes)
    held = []  # the annotation's create request, kept back until Skip has been clicked
    ana.route("**/annotations/", lambda route: held.append(route))
    ana.keyboard.press("b")
    ana.mouse.move(*_to_screen(ana, 10, 10))
    ana.mouse.down()
    ana.mouse.move(*_to_screen(ana, 40, 30), steps=4)
    ana.mouse.up()
    while not held:
        ana.wait_for_timeout(20)
    ana.click("#skip", no_wait_after=True)
    ana.wait_for_timeout(300)  # time enough for a page that does not wait to leave
    assert f"/tasks/{item.pk}/" in ana.url
    held[0].continue_()
    ana.get_by_text(f"Skipped {item.image.original_name}").wait_for()
    drawn = Annotation.objects.get(image=item.image, label_class=box, author=scenes["users"]["ana"])
    assert drawn.geometry["box"] == pytest.approx([10, 10, 30, 20], abs=0.5)
