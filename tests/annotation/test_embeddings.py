"""The embed job and nearest neighbours (annotation/services/embeddings.py, vectors.py)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from annotation.models import EmbeddingShard, ImageEmbedding
from annotation.services import embeddings as svc
from annotation.services import vectors as vector_store
from studio.errors import ApplicationError, Forbidden
from studio.models import DatasetVersion
from studio.services.ingest import upload_create
from studio.services.jobs import job_claim, job_run, jobs_sweep
from tests.annotation.conftest import jpeg
from tests.factories import upload
from tests.jobs import DyingContext, WorkerKilled


def test_embed_job_stores_unit_vectors_in_shards_and_finds_near_duplicates(team, version):
    job = svc.embedding_job_start(
        actor=team["reviewer"], version=version, backbone="efficientnet_lite0"
    )
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.result["embedded"] == 9 and job.result["skipped"] == 0 and job.result["failed"] == []
    space_id = job.result["space"]
    assert ImageEmbedding.objects.filter(space_id=space_id).count() == 9
    space = ImageEmbedding.objects.filter(space_id=space_id).first().space
    ids, vectors = vector_store.vectors_for(space)
    assert vectors.shape == (9, 1280) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)

    images = {i.original_name: i for i in version.dataset.images.all()}
    nearest = vector_store.similar_images(space=space, image=images["chelsea.jpg"], k=3)
    assert nearest[0][0] == images["chelsea-small.jpg"].pk and nearest[0][1] > 0.9
    assert all(s <= nearest[0][1] for _, s in nearest)


def test_unchanged_images_are_not_embedded_twice(team, dataset, version):
    first = svc.embedding_job_start(
        actor=team["lead"], version=version, backbone="efficientnet_lite0"
    )
    job_run(job_id=first.pk)
    extra = upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=dataset,
        files=[upload("grass.jpg", jpeg(skimage.data.grass()))],
    )
    job_run(job_id=extra.pk)
    v2 = DatasetVersion.objects.get(dataset=dataset, number=2)
    second = svc.embedding_job_start(actor=team["lead"], version=v2, backbone="efficientnet_lite0")
    job_run(job_id=second.pk)
    second.refresh_from_db()
    assert second.result["skipped"] == 9 and second.result["embedded"] == 1
    assert EmbeddingShard.objects.count() == 2


def test_killed_embed_job_resumes_without_repeating_batches(team, version, monkeypatch, settings):
    monkeypatch.setattr(svc, "BATCH", 4)
    settings.STUDIO = {**settings.STUDIO, "JOB_STALE_AFTER_S": 0}
    job = svc.embedding_job_start(
        actor=team["lead"], version=version, backbone="efficientnet_lite0"
    )
    job = job_claim(job.pk)

    with pytest.raises(WorkerKilled):
        svc.embed_run(job, DyingContext(job, die_at=2))
    assert ImageEmbedding.objects.count() == 4
    assert jobs_sweep() == [job.pk]
    job_run(job_id=job.pk)
    job.refresh_from_db()
    # Counted from the checkpoint: nothing was embedded before this job, it embedded all 9.
    assert job.status == "succeeded" and job.result["skipped"] == 0 and job.result["embedded"] == 9
    assert ImageEmbedding.objects.count() == 9


def test_missing_weights_and_permissions_are_clear_errors(team, version, settings, tmp_path):
    settings.STUDIO = {**settings.STUDIO, "WEIGHTS_DIR": tmp_path}
    with pytest.raises(ApplicationError, match="resnet50-11ad3fa6.pth in the weights folder"):
        svc.embedding_job_start(actor=team["lead"], version=version, backbone="resnet50")
    with pytest.raises(ApplicationError, match="Unknown backbone"):
        svc.embedding_job_start(actor=team["lead"], version=version, backbone="alexnet")
    with pytest.raises(Forbidden):
        svc.embedding_job_start(
            actor=team["annotator"], version=version, backbone="efficientnet_lite0"
        )


def test_similar_needs_an_embedding_first(team, version):
    job = svc.embedding_job_start(
        actor=team["lead"], version=version, backbone="efficientnet_lite0"
    )
    job_run(job_id=job.pk)
    space = ImageEmbedding.objects.first().space
    extra = upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=version.dataset,
        files=[upload("grass.jpg", jpeg(skimage.data.grass()))],
    )
    job_run(job_id=extra.pk)
    grass = version.dataset.images.get(original_name="grass.jpg")
    with pytest.raises(ApplicationError, match="no efficientnet_lite0 embedding yet"):
        vector_store.similar_images(space=space, image=grass)


def test_embed_and_similar_through_the_api(api, team, version):
    c = api(team["reviewer"])
    base = f"/api/v1/projects/{team['project'].slug}"
    r = c.post(
        f"{base}/datasets/{version.dataset_id}/versions/{version.number}/embed/", {}, format="json"
    )
    assert r.status_code == 202, r.content
    job_run(job_id=r.json()["id"])
    images = {i.original_name: i.pk for i in version.dataset.images.all()}
    r = c.get(f"{base}/images/{images['chelsea.jpg']}/similar/?k=2")
    assert r.status_code == 200
    assert [row["image"] for row in r.json()][0] == images["chelsea-small.jpg"]
    assert len(r.json()) == 2
    r = api(team["viewer"]).post(
        f"{base}/datasets/{version.dataset_id}/versions/1/embed/", {}, format="json"
    )
    assert r.status_code == 403
    r = api(team["outsider"]).get(f"{base}/images/{images['chelsea.jpg']}/similar/")
    assert r.status_code == 404
    r = c.post(
        f"{base}/datasets/{version.dataset_id}/versions/1/embed/",
        {"backbone": "alexnet"},
        format="json",
    )
    assert r.status_code == 400


def test_embed_button_and_more_like_this_on_the_image_page(client, team, version):
    client.force_login(team["lead"])
    slug = team["project"].slug
    images = {i.original_name: i.pk for i in version.dataset.images.all()}
    page = client.get(f"/p/{slug}/images/{images['chelsea.jpg']}/").content.decode()
    assert "No embeddings yet" in page
    r = client.post(
        f"/p/{slug}/datasets/{version.dataset_id}/versions/1/embed/",
        {"backbone": "efficientnet_lite0"},
    )
    assert r.status_code == 302 and r["Location"].startswith("/jobs/")
    job_run(job_id=int(r["Location"].split("/")[2]))
    page = client.get(f"/p/{slug}/images/{images['chelsea.jpg']}/").content.decode()
    first = page.index('id="similar"')
    assert page.index(f"/p/{slug}/images/{images['chelsea-small.jpg']}/", first) > first
    r = client.post(
        f"/p/{slug}/datasets/{version.dataset_id}/versions/1/embed/",
        {"backbone": "resnet50"},
        follow=True,
    )
    assert b"resnet50-11ad3fa6.pth" in r.content


def test_checkpoint_upload_is_checked_before_it_is_kept_and_embeds(
    api, team, version, settings, tmp_path
):
    import torch

    from annotation.models import BackboneCheckpoint
    from studio.ml.backbones import build_model

    c = api(team["reviewer"])
    base = f"/api/v1/projects/{team['project'].slug}"
    model = build_model("resnet18")
    model.fc = torch.nn.Linear(512, 4)  # fine-tuned for 4 classes
    good = tmp_path / "parcels.pt"
    torch.save(model.state_dict(), good)
    wrong = tmp_path / "wrong.pt"
    torch.save(build_model("resnet18").state_dict(), wrong)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not torch")

    def post(path, arch, name):
        with open(path, "rb") as fh:
            return c.post(
                f"{base}/checkpoints/",
                {"name": name, "architecture": arch, "file": fh},
                format="multipart",
            )

    r = post(wrong, "resnet50", "Wrong")
    assert r.status_code == 400 and "not a ResNet-50" in r.json()["error"]["message"]
    r = post(junk, "resnet18", "Junk")
    assert (
        r.status_code == 400 and "not a readable torch weights file" in r.json()["error"]["message"]
    )
    assert not BackboneCheckpoint.objects.exists()
    assert not list((settings.MEDIA_ROOT / "projects").rglob("*.pt"))
    r = post(good, "resnet18", "Parcels")
    assert r.status_code == 201, r.content
    assert post(good, "resnet18", "Again").status_code == 409
    r = c.post(
        f"{base}/datasets/{version.dataset_id}/versions/1/embed/",
        {"checkpoint": r.json()["id"]},
        format="json",
    )
    job_run(job_id=r.json()["id"])
    from studio.models import Job

    job = Job.objects.get(pk=r.json()["id"])
    assert (
        job.status == "succeeded"
        and job.result["backbone"] == "resnet18"
        and job.result["embedded"] == 9
    )
    space = ImageEmbedding.objects.filter(space_id=job.result["space"]).first().space
    assert space.dim == 512 and space.weights == BackboneCheckpoint.objects.get().sha256


def test_checkpoint_upload_page(client, team, version, tmp_path):
    import torch

    from studio.ml.backbones import build_model

    client.force_login(team["lead"])
    url = f"/p/{team['project'].slug}/datasets/{version.dataset_id}/curate/checkpoints/"
    r = client.post(
        url,
        {
            "name": "Bad",
            "architecture": "vit_b_16",
            "file": upload("bad.pt", b"nope"),
            "version": 1,
        },
        follow=True,
    )
    assert (
        "Checkpoint not kept" in r.content.decode()
        and "bad.pt is not a readable torch weights file" in r.content.decode()
    )
    path = tmp_path / "r18.pt"
    torch.save(build_model("resnet18").state_dict(), path)
    r = client.post(
        url,
        {
            "name": "Mine",
            "architecture": "resnet18",
            "file": upload("r18.pt", path.read_bytes()),
            "version": 1,
        },
        follow=True,
    )
    page = r.content.decode()
    assert "checked and kept" in page and "Checkpoint: Mine (resnet18)" in page


def test_image_page_title_is_just_the_file_name(client, team, version):
    client.force_login(team["viewer"])
    image = version.dataset.images.get(original_name="coffee.jpg")
    page = client.get(f"/p/{team['project'].slug}/images/{image.pk}/").content.decode()
    assert "<title>coffee.jpg · Studio</title>" in page and page.count('id="similar"') == 1
