"""Nothing lost by surprise (issue 9): near-duplicates that do not chain, the best copy kept,
actions that shrink a dataset previewed in numbers and confirmed, undone by a restore; label
classes deleted only after a confirmation step."""

from __future__ import annotations

import io
from html import unescape

import numpy as np
import pytest
import skimage.data
from PIL import Image as PILImage
from PIL import ImageFilter

from annotation.models import DuplicateMember, LabelClass
from annotation.services import curation as svc
from annotation.services import labels
from annotation.services.embeddings import embedding_job_start
from annotation.services.vectors import vectors_for
from studio.errors import Conflict
from studio.models import DatasetVersion
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from tests.factories import upload

FADE = ["chelsea", "coffee", "rocket", "astronaut"]


def _jpeg(img: PILImage.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _run(job):
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


@pytest.fixture
def similar(team, dataset):
    """37 cross-fades through four photos (each like the next, the ends unlike), then three
    worse copies of a fifth photo uploaded before its original."""
    photos = [
        PILImage.fromarray(getattr(skimage.data, n)()).convert("RGB").resize((320, 240))
        for n in FADE
    ]
    files = []
    for a, (left, right) in enumerate(zip(photos, photos[1:], strict=False)):
        for step, t in enumerate(np.linspace(0, 1, 12, endpoint=False)):
            blend = PILImage.blend(left, right, float(t))
            files.append(upload(f"fade-{a}-{step:02d}.jpg", _jpeg(blend)))
    files.append(upload("fade-end.jpg", _jpeg(photos[-1])))
    original = PILImage.fromarray(skimage.data.immunohistochemistry())
    files += [
        upload("ihc-small.jpg", _jpeg(original.resize((256, 256)))),
        upload("ihc-q10.jpg", _jpeg(original, quality=10)),
        upload("ihc-blurred.jpg", _jpeg(original.filter(ImageFilter.GaussianBlur(1.5)))),
        upload("ihc.jpg", _jpeg(original)),
    ]
    _run(upload_create(actor=team["lead"], project=team["project"], dataset=dataset, files=files))
    version = DatasetVersion.objects.get(dataset=dataset)
    _run(embedding_job_start(actor=team["lead"], version=version, backbone="efficientnet_lite0"))
    return version


def test_near_duplicate_groups_keep_every_member_near_the_best_copy(team, similar):
    _run(svc.analyze_job_start(actor=team["lead"], version=similar, threshold=0.85))
    members = DuplicateMember.objects.filter(group__version=similar).select_related("image")
    ids, vectors = vectors_for(members.first().group.space)
    row = {int(i): r for r, i in enumerate(ids)}
    kept = {m.group_id: m for m in members if m.keep}
    for m in members:
        centre = kept[m.group_id]
        cosine = float(vectors[row[m.image_id]] @ vectors[row[centre.image_id]])
        assert cosine >= 0.85 and m.similarity >= 0.85, (m.image.original_name, cosine)
    # The worse copies were uploaded first, yet the original is the one kept.
    original = members.get(image__original_name="ihc.jpg")
    group = {m.image.original_name for m in members if m.group_id == original.group_id}
    assert original.keep and group == {"ihc.jpg", "ihc-small.jpg", "ihc-q10.jpg", "ihc-blurred.jpg"}
    # Dropping duplicates leaves a distinct image from every stretch of the fades.
    preview = svc.curation_apply(
        actor=team["lead"], dataset=similar.dataset, image_ids=[], action="drop_duplicates",
        version=similar,
    )  # fmt: skip
    dropped = members.filter(keep=False).count()
    assert preview["applied"] is False and preview["removed"] == dropped
    assert preview["images_after"] == 41 - dropped >= 10
    assert preview["message"] == (
        f"Version 2 will have {41 - dropped} images: {dropped} fewer than version 1 (41)."
    )


def test_version_actions_preview_then_confirm_then_undo_through_the_api(api, team, similar):
    c = api(team["reviewer"])
    base = f"/api/v1/projects/{team['project'].slug}/datasets/{similar.dataset_id}"
    ids = list(similar.items.values_list("image_id", flat=True))
    body = {"action": "keep_only", "image_ids": ids[:11]}
    r = c.post(f"{base}/curate/", body, format="json")
    preview = r.json()
    assert r.status_code == 200 and preview["applied"] is False
    assert preview["message"] == "Version 2 will have 11 images: 30 fewer than version 1 (41)."
    assert len(preview["removed_ids"]) == 30 and set(preview["removed_ids"]) == set(ids[11:])
    assert DatasetVersion.objects.filter(dataset_id=similar.dataset_id).count() == 1
    assert similar.dataset.images.count() == 41  # the preview hid nothing
    # Confirming with a stale preview is refused: the working set changed in between.
    r = c.post(f"{base}/curate/", {**body, "confirm": True, "expect": "0" * 64}, format="json")
    assert r.status_code == 409 and similar.dataset.images.count() == 41
    r = c.post(
        f"{base}/curate/", {**body, "confirm": True, "expect": preview["expect"]}, format="json"
    )
    done = r.json()
    assert done["applied"] is True and done["version"] == 2 and done["images_after"] == 11
    # Undo: restore version 1's images as version 3, asked first.
    r = c.post(f"{base}/versions/1/restore/", {}, format="json").json()
    assert r["applied"] is False and r["message"] == (
        "Version 3 will have 41 images: 30 more than version 2 (11)."
    )
    assert DatasetVersion.objects.filter(dataset_id=similar.dataset_id).count() == 2
    r = c.post(f"{base}/versions/1/restore/", {"confirm": True}, format="json").json()
    assert r["applied"] is True and r["version"] == 3
    v1, v3 = (DatasetVersion.objects.get(dataset_id=similar.dataset_id, number=n) for n in (1, 3))
    assert v3.manifest_hash == v1.manifest_hash and v3.image_count == 41
    assert similar.dataset.images.count() == 41
    again = c.post(f"{base}/versions/1/restore/", {}, format="json").json()
    assert again["unchanged"] is True and again["message"].startswith("No change")
    assert (
        api(team["viewer"])
        .post(f"{base}/versions/1/restore/", {"confirm": True}, format="json")
        .status_code
        == 403
    )
    assert (
        api(team["outsider"]).post(f"{base}/versions/1/restore/", {}, format="json").status_code
        == 404
    )


def test_version_actions_ask_first_on_the_pages_and_undo_from_the_page(client, team, similar):
    client.force_login(team["lead"])
    slug, ds = team["project"].slug, similar.dataset_id
    _run(svc.analyze_job_start(actor=team["lead"], version=similar, threshold=0.85))
    dropped = DuplicateMember.objects.filter(group__version=similar, keep=False).count()
    groups = similar.duplicate_groups.count()
    listing = client.get(f"/p/{slug}/datasets/{ds}/duplicates/?version=1").content.decode()
    assert f"Drop {dropped} copies from {groups} groups…" in listing
    page = client.post(
        f"/p/{slug}/datasets/{ds}/curate/apply/", {"version": 1, "action": "drop_duplicates"}
    ).content.decode()
    assert (
        f"Version 2 will have {41 - dropped} images: {dropped} fewer than version 1 (41)." in page
    )
    assert "<script" not in page.split("<main", 1)[-1] and 'name="confirm" value="1"' in page
    assert page.count('class="thumbs small-thumbs"') == 1  # the copies it removes, shown
    assert DatasetVersion.objects.filter(dataset_id=ds).count() == 1
    r = client.post(
        f"/p/{slug}/datasets/{ds}/curate/apply/",
        {"version": 1, "action": "drop_duplicates", "confirm": "1"},
        follow=True,
    )
    text = unescape(r.content.decode())
    assert f"Version 2 made: {41 - dropped} images, {dropped} fewer than version 1 (41)." in text
    assert "Undo: restore version 1" in text
    confirm = client.get(f"/p/{slug}/datasets/{ds}/versions/1/restore/").content.decode()
    assert (
        f"Version 3 will have 41 images: {dropped} more than version 2 ({41 - dropped})." in confirm
    )
    assert DatasetVersion.objects.filter(dataset_id=ds).count() == 2
    r = client.post(f"/p/{slug}/datasets/{ds}/versions/1/restore/", {"confirm": "1"}, follow=True)
    assert b"Version 3 made with the 41 images of version 1" in r.content
    assert "Restore…" in client.get(f"/p/{slug}/datasets/{ds}/").content.decode()


def test_deleting_a_label_class_asks_first_and_says_what_it_affects(client, team, dataset):
    client.force_login(team["lead"])
    url = f"/p/{team['project'].slug}/labels/"
    client.post(url, {"name": "car", "kind": "box", "colour": "#112233", "attributes": ""})
    car = LabelClass.objects.get(project=team["project"], name="car")
    page = client.post(url, {"delete": car.pk}).content.decode()
    assert "No annotation uses it" in unescape(page) and 'name="confirm" value="1"' in page
    assert LabelClass.objects.filter(pk=car.pk).exists()  # asked, not deleted
    client.post(url, {"delete": car.pk, "confirm": "1"})
    assert not LabelClass.objects.filter(pk=car.pk).exists()


def test_a_class_whose_deleted_annotations_are_kept_is_not_deleted(team, version_one_image):
    image = version_one_image
    car = labels.label_class_create(
        actor=team["lead"], project=team["project"], name="car", kind="box"
    )
    a = labels.annotation_create(
        actor=team["annotator"], image=image, label_class=car, geometry=[1, 1, 5, 5]
    )
    labels.annotation_delete(actor=team["annotator"], annotation=a, expected_version=a.version)
    with pytest.raises(Conflict, match="1 deleted annotation of 'car' is kept"):
        labels.label_class_delete(actor=team["lead"], label_class=car)
    assert LabelClass.objects.filter(pk=car.pk).exists()


@pytest.fixture
def version_one_image(team, dataset):
    files = [upload("one.jpg", _jpeg(PILImage.fromarray(skimage.data.coffee())))]
    _run(upload_create(actor=team["lead"], project=team["project"], dataset=dataset, files=files))
    return DatasetVersion.objects.get(dataset=dataset).items.first().image


def test_setting_a_field_says_how_many_values_it_replaces(team, version_one_image):
    image = version_one_image
    dataset = image.datasets.first()
    first = svc.curation_apply(
        actor=team["lead"], dataset=dataset, image_ids=[image.pk], action="set_metadata",
        field="tag", value="blurry",
    )  # fmt: skip
    again = svc.curation_apply(
        actor=team["lead"], dataset=dataset, image_ids=[image.pk], action="set_metadata",
        field="tag", value="sharp",
    )  # fmt: skip
    assert first["replaced"] == 0 and again["replaced"] == 1


def test_a_copy_chosen_to_keep_stays_kept_when_analysing_again(team, similar):
    _run(svc.analyze_job_start(actor=team["lead"], version=similar, threshold=0.85))
    small = DuplicateMember.objects.get(
        group__version=similar, image__original_name="ihc-small.jpg"
    )
    assert not small.keep
    svc.duplicate_keep(actor=team["lead"], member=small)
    _run(svc.analyze_job_start(actor=team["lead"], version=similar, threshold=0.85))
    again = DuplicateMember.objects.get(
        group__version=similar, image__original_name="ihc-small.jpg"
    )
    assert again.keep and again.chosen  # the person's choice was not lost
    assert all(m.similarity >= 0.85 for m in again.group.members.all())
