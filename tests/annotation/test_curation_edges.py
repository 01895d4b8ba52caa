"""Edge cases found in review: mixed embedding spaces, resumes, bad input, escaping."""

from __future__ import annotations

import pytest
import skimage.data
import torch

from annotation import charts
from annotation.models import (
    BackboneCheckpoint,
    ClusterRun,
    DuplicateGroup,
    DuplicateMember,
    VersionImageScore,
)
from annotation.services import curation as svc
from annotation.services import embeddings as emb
from studio.errors import ApplicationError
from studio.ml.backbones import WeightsError, build_model, read_state_dict
from studio.models import DatasetVersion, Job
from studio.services.ingest import upload_create
from studio.services.jobs import JobContext, job_claim, job_run
from tests.annotation.conftest import jpeg
from tests.factories import upload
from tests.jobs import DyingContext, WorkerKilled


def _run(job: Job) -> Job:
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


def _checkpoint(team, tmp_path) -> BackboneCheckpoint:
    from django.core.files import File
    from django.core.files.storage import default_storage

    path = tmp_path / "r18.pt"
    torch.save(build_model("resnet18").state_dict(), path)
    name = default_storage.save("projects/r18.pt", File(path.open("rb")))
    return BackboneCheckpoint.objects.create(
        project=team["project"],
        name="r18",
        architecture="resnet18",
        file=name,
        sha256="1" * 64,
        byte_size=1,
    )


def test_reanalysis_with_another_space_replaces_groups_and_drops_only_copies(
    team, embedded, tmp_path
):
    _run(svc.analyze_job_start(actor=team["lead"], version=embedded))
    checkpoint = _checkpoint(team, tmp_path)
    job = _run(
        emb.embedding_job_start(
            actor=team["lead"], version=embedded, backbone="resnet18", checkpoint=checkpoint
        )
    )
    _run(
        svc.analyze_job_start(
            actor=team["lead"], version=embedded, space_id=job.result["space"], threshold=0.99
        )
    )
    assert set(
        DuplicateGroup.objects.filter(version=embedded).values_list("space_id", flat=True)
    ) <= {job.result["space"]}
    dropped = DuplicateMember.objects.filter(group__version=embedded, keep=False).count()
    if dropped:
        r = svc.curation_apply(
            actor=team["lead"],
            dataset=embedded.dataset,
            image_ids=[],
            action="drop_duplicates",
            version=embedded,
            confirm=True,
        )
        assert (
            DatasetVersion.objects.get(dataset=embedded.dataset, number=r["version"]).image_count
            == 9 - dropped
        )
    else:
        with pytest.raises(ApplicationError, match="no duplicates"):
            svc.curation_apply(
                actor=team["lead"],
                dataset=embedded.dataset,
                image_ids=[],
                action="drop_duplicates",
                version=embedded,
            )


def test_follow_ups_use_the_space_just_embedded_and_run_once(team, dataset, embedded, tmp_path):
    _run(
        emb.embedding_job_start(
            actor=team["lead"],
            version=embedded,
            backbone="resnet18",
            checkpoint=_checkpoint(team, tmp_path),
        )
    )
    extra = upload_create(actor=team["lead"], project=team["project"], dataset=dataset,
                          files=[upload(f"{n}.jpg", jpeg(getattr(skimage.data, n)())) for n in ("grass", "gravel", "brick")])  # fmt: skip
    job_run(job_id=extra.pk)
    v2 = DatasetVersion.objects.get(dataset=dataset, number=2)
    job = emb.embedding_job_start(
        actor=team["lead"], version=v2, backbone="efficientnet_lite0", then=["cluster"]
    )
    claimed = job_claim(job.pk)
    first = emb.embed_run(claimed, JobContext(claimed))
    claimed.refresh_from_db()
    again = emb.embed_run(
        claimed, JobContext(claimed)
    )  # a redelivery before the outcome was recorded
    assert first["follow_ups"] == again["follow_ups"] and len(first["follow_ups"]) == 1
    cluster_job = _run(Job.objects.get(pk=first["follow_ups"][0]))
    run = ClusterRun.objects.get(job=cluster_job)
    assert run.space_id == first["space"] and cluster_job.result["images"] == 12


def test_scores_belong_to_the_version_they_were_computed_in(team, dataset, embedded):
    _run(svc.analyze_job_start(actor=team["lead"], version=embedded))
    before = dict(
        VersionImageScore.objects.filter(version=embedded).values_list("image_id", "outlier_score")
    )
    extra = upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=dataset,
        files=[upload("grass.jpg", jpeg(skimage.data.grass()))],
    )
    job_run(job_id=extra.pk)
    v2 = DatasetVersion.objects.get(dataset=dataset, number=2)
    _run(emb.embedding_job_start(actor=team["lead"], version=v2, backbone="efficientnet_lite0"))
    _run(svc.analyze_job_start(actor=team["lead"], version=v2))
    assert (
        dict(
            VersionImageScore.objects.filter(version=embedded).values_list(
                "image_id", "outlier_score"
            )
        )
        == before
    )
    assert VersionImageScore.objects.filter(version=v2).count() == 10


def test_bad_input_is_refused_with_a_clear_error(api, client, team, embedded, tmp_path):
    c = api(team["lead"])
    base = f"/api/v1/projects/{team['project'].slug}"
    r = c.post(
        f"{base}/datasets/{embedded.dataset_id}/curate/",
        {"action": "set_metadata", "version": 1, "filter": {"Meta.kind": "pet"}},
        format="json",
    )
    assert r.status_code == 400 and "Unknown filter 'Meta.kind'" in r.json()["error"]["message"]
    r = c.post(
        f"{base}/datasets/{embedded.dataset_id}/curate/",
        {"action": "exclude", "image_ids": [2**70]},
        format="json",
    )
    assert r.status_code == 400
    r = c.post(
        f"{base}/datasets/{embedded.dataset_id}/versions/1/cluster/",
        {"method": "hdbscan", "min_cluster_size": 1},
        format="json",
    )
    assert r.status_code == 400
    with pytest.raises(ApplicationError, match="at least 2"):
        svc.cluster_job_start(
            actor=team["lead"], version=embedded, method="hdbscan", min_cluster_size=1
        )
    odd = tmp_path / "odd.pt"
    torch.save({0: torch.zeros(1)}, odd)
    with pytest.raises(WeightsError, match="non-text keys"):
        read_state_dict(odd)
    client.force_login(team["lead"])
    from studio.services.datasets import dataset_create

    empty = dataset_create(actor=team["lead"], project=team["project"], name="Empty")
    _run(svc.analyze_job_start(actor=team["lead"], version=embedded))
    member = DuplicateMember.objects.filter(group__version=embedded).first()
    r = client.post(f"/p/{team['project'].slug}/datasets/{empty.pk}/duplicates/{member.pk}/keep/")
    assert r.status_code == 404
    r = client.post(
        f"/p/{team['project'].slug}/datasets/{embedded.dataset_id}/curate/apply/",
        {"version": 1, "action": "queue", "cluster": 999_999},
    )
    assert r.status_code == 404


def test_user_text_is_escaped_in_the_map():
    figure = charts.map_figure(
        [[1, 0.0, 0.0]], {1: '<a href="https://evil">x</a>'}, "tag", {1: "<b>a.jpg</b>"}, {1: "/t"}
    )
    trace = figure["data"][0]
    assert "<a" not in trace["name"] and "&lt;a href" in trace["name"]
    assert (
        trace["customdata"][0][2] == "&lt;b&gt;a.jpg&lt;/b&gt;"
        and trace["customdata"][0][3] == "<b>a.jpg</b>"
    )


def test_a_resumed_embed_job_lists_each_unreadable_image_once(team, version, monkeypatch, settings):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    monkeypatch.setattr(emb, "BATCH", 4)
    broken = version.dataset.images.order_by("pk").first()
    default_storage.delete(broken.file.name)
    default_storage.save(broken.file.name, ContentFile(b"not an image"))
    job = emb.embedding_job_start(
        actor=team["lead"], version=version, backbone="efficientnet_lite0"
    )
    claimed = job_claim(job.pk)

    with pytest.raises(WorkerKilled):
        emb.embed_run(claimed, DyingContext(claimed, die_at=2))
    claimed.refresh_from_db()
    result = emb.embed_run(claimed, JobContext(claimed))
    assert [f["image"] for f in result["failed"]] == [broken.pk] and result["embedded"] == 8


def test_legend_lists_clusters_in_natural_order():
    points = [[i, 0.0, 0.0] for i in range(12)]
    figure = charts.map_figure(
        points, {i: f"Cluster {i + 1}" for i in range(12)}, "cluster", {}, {}
    )
    assert [t["name"].split(" (")[0] for t in figure["data"]][:3] == [
        "Cluster 1",
        "Cluster 2",
        "Cluster 3",
    ]
