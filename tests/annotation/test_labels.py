"""Label schema, annotations, revisions and optimistic locking (annotation/services/labels.py)."""

from __future__ import annotations

import numpy as np
import pytest

from annotation import geometry as geo
from annotation.models import Annotation, AnnotationRevision, LabelClass
from annotation.services import labels as svc
from studio.errors import ApplicationError, Conflict, Forbidden


@pytest.fixture
def schema(team):
    project, lead = team["project"], team["lead"]
    return {
        "car": svc.label_class_create(
            actor=lead,
            project=project,
            name="car",
            kind="polygon",
            attributes={"occluded": ["yes", "no"]},
        ),  # fmt: skip
        "dent": svc.label_class_create(
            actor=lead, project=project, name="dent", kind="mask", colour="#e0533a"
        ),
        "sign": svc.label_class_create(actor=lead, project=project, name="sign", kind="box"),
    }


@pytest.fixture
def image(version):
    return version.dataset.images.get(original_name="coffee.jpg")  # 600 × 400


def test_schema_rules(team, schema):
    lead = team["lead"]
    with pytest.raises(Conflict):
        svc.label_class_create(actor=lead, project=team["project"], name="car", kind="box")
    with pytest.raises(Forbidden):
        svc.label_class_create(
            actor=team["reviewer"], project=team["project"], name="x", kind="box"
        )
    with pytest.raises(ApplicationError, match="#rrggbb"):
        svc.label_class_create(
            actor=lead, project=team["project"], name="y", kind="box", colour="red"
        )
    renamed = svc.label_class_update(actor=lead, label_class=schema["car"], name="vehicle")
    renamed = svc.label_class_update(actor=lead, label_class=renamed, name="automobile")
    assert renamed.previous_names == ["car", "vehicle"]


def test_annotations_keep_every_revision_and_refuse_stale_saves(team, schema, image):
    a = svc.annotation_create(actor=team["annotator"], image=image, label_class=schema["car"],
                              geometry=[10, 10, 100, 10, 100, 80, 10, 80], attributes={"occluded": "no"})  # fmt: skip
    assert a.version == 1 and a.area == 90 * 70 and a.bbox == [10.0, 10.0, 90.0, 70.0]
    # Two people loaded version 1; the first save wins, the second gets a 409 with the current state.
    first = svc.annotation_update(
        actor=team["annotator"], annotation=a, expected_version=1, attributes={"occluded": "yes"}
    )
    assert first.version == 2
    with pytest.raises(svc.StaleAnnotation) as stale:
        svc.annotation_update(
            actor=team["reviewer"], annotation=a, expected_version=1, geometry=[0, 0, 50, 0, 50, 50]
        )
    assert stale.value.http_status == 409 and stale.value.details["version"] == 2
    assert stale.value.details["current"]["attributes"] == {"occluded": "yes"}
    assert Annotation.objects.get(pk=a.pk).geometry["points"] == [10, 10, 100, 10, 100, 80, 10, 80]

    deleted = svc.annotation_delete(actor=team["annotator"], annotation=first, expected_version=2)
    assert deleted.deleted and deleted.version == 3
    revisions = list(AnnotationRevision.objects.filter(annotation=a).order_by("version"))
    assert [r.action for r in revisions] == ["create", "update", "delete"]
    restored = svc.annotation_restore(actor=team["lead"], revision=revisions[0])
    assert (
        not restored.deleted and restored.version == 4 and restored.attributes == {"occluded": "no"}
    )


def test_bad_annotations_are_refused_with_the_reason(team, schema, image):
    actor = team["annotator"]
    cases = [
        (schema["car"], [0, 0, 700, 0, 700, 50], "outside the 600×400 image"),
        (schema["car"], [0, 0, 50, 50, 50, 0, 0, 50], "crosses itself"),
        (schema["car"], [0, 0, float("nan"), 5, 9, 9], "NaN"),
        (schema["dent"], {"size": [400, 600], "counts": [5, 6]}, "not height × width"),
        (schema["sign"], [590, 0, 20, 20], "outside"),
    ]
    for label_class, geometry, message in cases:
        with pytest.raises(ApplicationError, match=message):
            svc.annotation_create(
                actor=actor, image=image, label_class=label_class, geometry=geometry
            )
    with pytest.raises(ApplicationError, match="must be one of yes, no"):
        svc.annotation_create(
            actor=actor,
            image=image,
            label_class=schema["car"],
            geometry=[0, 0, 9, 0, 9, 9],
            attributes={"occluded": "maybe"},
        )
    with pytest.raises(ApplicationError, match="no attribute 'colour'"):
        svc.annotation_create(
            actor=actor,
            image=image,
            label_class=schema["car"],
            geometry=[0, 0, 9, 0, 9, 9],
            attributes={"colour": "red"},
        )
    with pytest.raises(Forbidden):
        svc.annotation_create(
            actor=team["viewer"], image=image, label_class=schema["sign"], geometry=[0, 0, 5, 5]
        )
    assert not Annotation.objects.exists()


def test_masks_are_stored_as_rle_and_classes_in_use_cannot_be_deleted(team, schema, image):
    mask = np.zeros((400, 600), bool)
    mask[100:200, 300:450] = True
    a = svc.annotation_create(
        actor=team["annotator"],
        image=image,
        label_class=schema["dent"],
        geometry=geo.mask_from_array(mask),
    )
    assert a.area == 100 * 150 and isinstance(a.geometry["counts"], str)
    assert (geo.to_mask(a.geometry, "mask", 600, 400) == mask).all()
    with pytest.raises(Conflict, match="1 annotation use 'dent'"):
        svc.label_class_delete(actor=team["lead"], label_class=schema["dent"])
    svc.label_class_delete(actor=team["lead"], label_class=schema["sign"])


def test_annotation_api_with_409_history_and_restore(api, team, schema, image):
    base = f"/api/v1/projects/{team['project'].slug}"
    ann, rev = api(team["annotator"]), api(team["reviewer"])
    r = ann.post(
        f"{base}/images/{image.pk}/annotations/",
        {"label_class": schema["sign"].pk, "geometry": [10, 20, 30, 40]},
        format="json",
    )
    assert r.status_code == 201, r.content
    a = r.json()
    assert a["geometry"] == [10, 20, 30, 40] and a["area"] == 1200 and a["version"] == 1
    url = f"{base}/annotations/{a['id']}/"
    assert (
        ann.patch(url, {"version": 1, "geometry": [12, 20, 30, 40]}, format="json").json()[
            "version"
        ]
        == 2
    )
    r = rev.patch(url, {"version": 1, "status": "submitted"}, format="json")
    assert r.status_code == 409
    body = r.json()["error"]
    assert body["code"] == "stale_version" and body["details"]["version"] == 2
    assert body["details"]["current"]["geometry"] == {"box": [12.0, 20.0, 30.0, 40.0]}
    r = ann.post(
        f"{base}/images/{image.pk}/annotations/",
        {"label_class": schema["sign"].pk, "geometry": [590, 0, 20, 20]},
        format="json",
    )
    assert r.status_code == 400 and "outside" in r.json()["error"]["message"]
    assert ann.delete(url).status_code == 400  # the version is required
    assert ann.delete(f"{url}?version=2").json()["deleted"] is True
    history = ann.get(f"{url}history/").json()
    assert [h["action"] for h in history] == ["create", "update", "delete"]
    restored = rev.post(f"{url}history/{history[1]['id']}/restore/").json()
    assert (
        restored["deleted"] is False
        and restored["geometry"] == [12.0, 20.0, 30.0, 40.0]
        and restored["version"] == 4
    )
    assert len(ann.get(f"{base}/images/{image.pk}/annotations/").json()) == 1
    assert (
        api(team["viewer"])
        .patch(url, {"version": 4, "status": "submitted"}, format="json")
        .status_code
        == 403
    )
    assert api(team["outsider"]).get(url).status_code == 404
    r = api(team["lead"]).post(
        f"{base}/label-classes/",
        {"name": "wheel", "kind": "polygon", "colour": "#123456"},
        format="json",
    )
    assert r.status_code == 201
    assert api(team["lead"]).delete(f"{base}/label-classes/{schema['sign'].pk}/").status_code == 409


def test_grabcut_preannotation_makes_a_draft_from_a_box_or_clicks(api, team, dataset):
    from studio.demo import encode
    from studio.ml.scenes import render_scene
    from studio.services.ingest import upload_create
    from studio.services.jobs import job_run
    from tests.factories import upload

    scene = render_scene(18)
    job = upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=dataset,
        files=[upload("s.png", encode(scene.image, "PNG"))],
    )
    job_run(job_id=job.pk)
    image = dataset.images.get()
    base = f"/api/v1/projects/{team['project'].slug}"
    c = api(team["annotator"])
    dent = (
        api(team["lead"])
        .post(f"{base}/label-classes/", {"name": "object", "kind": "mask"}, format="json")
        .json()
    )
    x0, y0, x1, y1 = scene.objects[0].box
    r = c.post(
        f"{base}/images/{image.pk}/preannotate/",
        {"label_class": dent["id"], "box": [x0 - 4, y0 - 4, x1 - x0 + 8, y1 - y0 + 8]},
        format="json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["source"] == "grabcut" and body["status"] == "draft" and body["kind"] == "mask"
    from annotation import geometry as geo

    mask = geo.to_mask(body["geometry"], "mask", image.width, image.height)
    truth = scene.objects[0].mask
    assert (mask & truth).sum() / (mask | truth).sum() >= 0.9
    ys, xs = np.nonzero(truth)
    r = c.post(
        f"{base}/images/{image.pk}/preannotate/",
        {"label_class": dent["id"], "positive": [[float(xs.mean()), float(ys.mean())]]},
        format="json",
    )
    assert r.status_code == 201
    r = c.post(
        f"{base}/images/{image.pk}/preannotate/",
        {"label_class": dent["id"], "positive": [[9999, 5]]},
        format="json",
    )
    assert r.status_code == 400 and "outside" in r.json()["error"]["message"]
    box_class = (
        api(team["lead"])
        .post(f"{base}/label-classes/", {"name": "b", "kind": "box"}, format="json")
        .json()
    )
    r = c.post(
        f"{base}/images/{image.pk}/preannotate/",
        {"label_class": box_class["id"], "box": [1, 1, 5, 5]},
        format="json",
    )
    assert r.status_code == 400 and "needs a mask class" in r.json()["error"]["message"]
    assert (
        api(team["viewer"])
        .post(
            f"{base}/images/{image.pk}/preannotate/",
            {"label_class": dent["id"], "box": [1, 1, 5, 5]},
            format="json",
        )
        .status_code
        == 403
    )


def test_grabcut_preannotation_obeys_ordered_clicks_through_the_api(api, team, dataset):
    """The canvas's path: clicks in the order made, each answer refining the last draft."""
    import skimage.data

    from studio.demo import encode
    from studio.services.ingest import upload_create
    from studio.services.jobs import job_run
    from tests.benchmarks.click_objects import click_object
    from tests.factories import upload

    obj = click_object(0)
    camera = np.stack([skimage.data.camera()] * 3, axis=-1)
    job = upload_create(
        actor=team["lead"], project=team["project"], dataset=dataset,
        files=[upload("o.png", encode(obj.image, "PNG")), upload("c.png", encode(camera, "PNG"))],
    )  # fmt: skip
    job_run(job_id=job.pk)
    image = dataset.images.get(original_name="o.png")
    base = f"/api/v1/projects/{team['project'].slug}"
    url = f"{base}/images/{image.pk}/preannotate/"
    c = api(team["annotator"])
    dent = (
        api(team["lead"])
        .post(f"{base}/label-classes/", {"name": "object", "kind": "mask"}, format="json")
        .json()
    )

    def mask_of(body):
        return geo.to_mask(body["geometry"], "mask", image.width, image.height)

    ys, xs = np.nonzero(obj.mask)
    x, y = int(xs.mean()), int(ys.mean())
    clicks = [{"x": x, "y": y, "positive": True}]
    r = c.post(url, {"label_class": dent["id"], "clicks": clicks}, format="json")
    assert r.status_code == 201, r.content
    first = r.json()
    truth = obj.mask
    assert (mask_of(first) & truth).sum() / (mask_of(first) | truth).sum() >= 0.9
    # A negative click on the object, then a positive one in the region it took away: each
    # clicked pixel ends on the side it asked for, the last one included.
    clicks += [{"x": x + 20, "y": y, "positive": False}, {"x": x + 26, "y": y, "positive": True}]
    r = c.post(url, {"label_class": dent["id"], "clicks": clicks[:2]}, format="json")
    second = r.json()
    assert not mask_of(second)[y, x + 20] and not mask_of(second)[y, x + 26]
    body = {
        "label_class": dent["id"],
        "clicks": clicks,
        "previous": second["id"],
        "previous_clicks": 2,
    }
    third = c.post(url, body, format="json").json()
    mask = mask_of(third)
    assert mask[y, x] and not mask[y, x + 20] and mask[y, x + 26]
    # Only the new click ran on the previous draft; the answer is the one to all clicks.
    again = c.post(url, {"label_class": dent["id"], "clicks": clicks}, format="json").json()
    assert np.array_equal(mask_of(again), mask)
    # The old separate lists still work: positives first, then negatives.
    r = c.post(url, {"label_class": dent["id"], "positive": [[x, y]], "negative": [[x + 20, y]]},
               format="json")  # fmt: skip
    assert r.status_code == 201 and not mask_of(r.json())[y, x + 20]
    for wrong, message in [
        ({"clicks": clicks, "positive": [[x, y]]}, "not both"),
        ({"clicks": [{"x": x, "y": 9999, "positive": True}]}, "outside"),
        ({"clicks": clicks, "previous": first["id"], "previous_clicks": 9}, "previous_clicks"),
        ({"clicks": [{"x": x, "y": y}]}, "positive"),
    ]:
        r = c.post(url, {"label_class": dent["id"], **wrong}, format="json")
        assert r.status_code == 400 and message in str(r.json()["error"]), (wrong, r.json())
    # A box on flat sky, where GrabCut finds nothing: a best effort, not a 400.
    sky = dataset.images.get(original_name="c.png")
    r = c.post(f"{base}/images/{sky.pk}/preannotate/",
               {"label_class": dent["id"], "box": [20, 20, 200, 200]}, format="json")  # fmt: skip
    assert r.status_code == 201, r.content
    assert geo.to_mask(r.json()["geometry"], "mask", sky.width, sky.height).sum() > 20_000
    # The OpenAPI schema shows the ordered clicks.
    schema = api(team["lead"]).get("/api/schema/", {"format": "json"}).json()
    request = schema["components"]["schemas"]["PreannotateRequest"]["properties"]
    assert "clicks" in request and "previous" in request
    click = schema["components"]["schemas"]["ClickRequest"]
    assert set(click["required"]) == {"x", "y", "positive"}


def test_sam_preannotation_through_the_real_loading_path(api, team, image, settings, tmp_path):
    import torch

    from annotation.services import preannotation
    from studio.ml.sam import build_sam

    base = f"/api/v1/projects/{team['project'].slug}"
    c = api(team["annotator"])
    dent = (
        api(team["lead"])
        .post(f"{base}/label-classes/", {"name": "object", "kind": "mask"}, format="json")
        .json()
    )
    settings.STUDIO = {**settings.STUDIO, "WEIGHTS_DIR": tmp_path, "SAM_CHECKPOINT": ""}
    r = c.post(
        f"{base}/images/{image.pk}/preannotate/",
        {"label_class": dent["id"], "method": "sam", "positive": [[300, 200]]},
        format="json",
    )
    assert (
        r.status_code == 400
        and "sam_vit_b_01ec64.pth in the weights folder" in r.json()["error"]["message"]
    )

    prepare = f"{base}/images/{image.pk}/preannotate/prepare/"
    assert c.post(prepare).json() == {"method": "grabcut", "encoded": False}
    assert not preannotation.sam_installed()

    path = tmp_path / "my-sam.pth"
    torch.manual_seed(1)
    torch.save(build_sam("tiny").state_dict(), path)
    settings.STUDIO = {**settings.STUDIO, "SAM_MODEL": "tiny", "SAM_CHECKPOINT": str(path)}
    preannotation._SESSIONS.clear()
    assert preannotation.sam_installed() and not preannotation._SESSIONS  # no model loaded
    # The canvas asks for the image encoder to run when it opens the image: once.
    assert c.post(prepare).json() == {"method": "sam", "encoded": True}
    assert c.post(prepare).json() == {"method": "sam", "encoded": False}
    assert api(team["outsider"]).post(prepare).status_code == 404
    r = c.post(
        f"{base}/images/{image.pk}/preannotate/",
        {"label_class": dent["id"], "positive": [[300, 200]], "box": [100, 50, 400, 300]},
        format="json",
    )
    # Random tiny weights, seeded: the decoder's best mask is not empty, so a draft is made.
    assert r.status_code == 201, r.content
    assert (
        r.json()["source"] == "sam"
        and 0 <= r.json()["confidence"] <= 1
        and r.json()["status"] == "draft"
    )
    c.post(
        f"{base}/images/{image.pk}/preannotate/",
        {"label_class": dent["id"], "method": "sam", "positive": [[100, 100]]},
        format="json",
    )
    # Ordered clicks reach SAM too, and each clicked pixel ends on its side whatever the
    # decoder (here random weights) made of them.
    clicks = [{"x": 300, "y": 200, "positive": True}, {"x": 120, "y": 90, "positive": False},
              {"x": 301, "y": 260, "positive": True}, {"x": 300, "y": 201, "positive": False}]  # fmt: skip
    r = c.post(
        f"{base}/images/{image.pk}/preannotate/",
        {"label_class": dent["id"], "method": "sam", "clicks": clicks},
        format="json",
    )
    assert r.status_code == 201, r.content
    mask = geo.to_mask(r.json()["geometry"], "mask", image.width, image.height)
    assert mask[260, 301] and not mask[90, 120] and not mask[201, 300]
    # The last click's disk covers the first one's pixel: the later click wins.
    assert not mask[200, 300]
    # Every click reused the embedding computed when the canvas prepared the image.
    assert preannotation.sam_session().encoder_runs == 1


def test_image_page_draws_and_lists_annotations(client, team, schema, image):
    svc.annotation_create(
        actor=team["annotator"],
        image=image,
        label_class=schema["car"],
        geometry=[10, 10, 100, 10, 100, 80, 10, 80],
    )
    svc.annotation_create(
        actor=team["annotator"],
        image=image,
        label_class=schema["sign"],
        geometry=[200, 20, 30, 40],
        status="submitted",
    )
    client.force_login(team["viewer"])
    page = client.get(f"/p/{team['project'].slug}/images/{image.pk}/").content.decode()
    assert 'viewBox="0 0 600 400"' in page, page[page.find("annotated") :][:800]
    assert 'points="10.0,10.0 100.0,10.0 100.0,80.0 10.0,80.0"' in page
    assert '<rect x="200.0" y="20.0" width="30.0" height="40.0"' in page
    assert "Submitted" in page and "car" in page and "v1" in page


def test_tags_propagate_to_near_neighbours_as_drafts(api, team, embedded):
    base = f"/api/v1/projects/{team['project'].slug}"
    lead = api(team["lead"])
    cat = lead.post(f"{base}/label-classes/", {"name": "cat", "kind": "tag"}, format="json").json()
    other = lead.post(
        f"{base}/label-classes/", {"name": "not cat", "kind": "tag"}, format="json"
    ).json()
    images = {i.original_name: i for i in embedded.dataset.images.all()}
    url = f"{base}/datasets/{embedded.dataset_id}/versions/1/propagate-tags/"
    assert lead.post(url, {}, format="json").status_code == 400  # nothing tagged yet
    for name, label in [
        ("chelsea.jpg", cat),
        ("coffee.jpg", other),
        ("rocket.jpg", other),
        ("moon.jpg", other),
    ]:
        svc.annotation_create(actor=team["lead"], image=images[name], label_class=LabelClass.objects.get(pk=label["id"]),
                              geometry=None, status="submitted")  # fmt: skip
    r = lead.post(url, {"k": 1}, format="json")
    assert r.status_code == 200 and r.json()["tagged"] == 5
    small = Annotation.objects.get(image=images["chelsea-small.jpg"])
    assert (
        small.label_class_id == cat["id"]
        and small.status == "draft"
        and small.source == "model"
        and small.confidence == 1
    )
    assert "nearest-neighbour" in small.source_detail
    assert lead.post(url, {"k": 1}, format="json").json() == {
        "tagged": 0,
        "left": 0,
    }  # nothing left to tag
    assert api(team["annotator"]).post(url, {}, format="json").status_code == 403
