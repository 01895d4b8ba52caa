"""Datasets, versions, splits and metadata (studio/services/datasets.py, selectors)."""

from __future__ import annotations

import json

import pytest

from studio import selectors
from studio.errors import ApplicationError, Conflict
from studio.models import DatasetVersionItem
from studio.services import datasets as svc
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from tests.factories import image_bytes, upload


def _ingest(team, dataset, names_seeds):
    job = upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=dataset,
        files=[upload(name, image_bytes(seed)) for name, seed in names_seeds],
    )
    job_run(job_id=job.pk)
    return job


def test_split_comes_from_the_hash_alone_and_is_roughly_80_10_10():
    import hashlib

    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5000)]
    splits = [svc.split_for(h) for h in hashes]
    assert splits == [svc.split_for(h) for h in hashes]
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert (
        0.77 < share["train"] < 0.83 and 0.08 < share["val"] < 0.12 and 0.08 < share["test"] < 0.12
    )


def test_versions_are_immutable_snapshots_with_a_stable_manifest_hash(team, dataset):
    _ingest(team, dataset, [("a.jpg", 1), ("b.jpg", 2)])
    v1 = selectors.version_get(user=team["lead"], dataset=dataset, number=1)
    manifest = svc.version_manifest(v1)
    assert {m["sha256"] for m in manifest["images"]} == set(
        dataset.images.values_list("sha256", flat=True)
    )
    assert (
        svc.manifest_hash([(m["sha256"], m["split"]) for m in manifest["images"]])
        == v1.manifest_hash
    )

    _ingest(team, dataset, [("c.jpg", 3)])
    v2 = selectors.version_get(user=team["lead"], dataset=dataset, number=2)
    assert v2.image_count == 3 and v2.manifest_hash != v1.manifest_hash
    v1.refresh_from_db()
    assert v1.image_count == 2 and DatasetVersionItem.objects.filter(version=v1).count() == 2
    same, created = svc.dataset_version_snapshot(actor=team["lead"], dataset=dataset)
    assert not created and same.number == 2


def test_snapshot_of_an_empty_dataset_is_refused(team, dataset):
    with pytest.raises(ApplicationError, match="no images"):
        svc.dataset_version_snapshot(actor=team["lead"], dataset=dataset)


def test_dataset_names_are_unique_per_project(team, dataset):
    with pytest.raises(Conflict):
        svc.dataset_create(actor=team["lead"], project=team["project"], name=dataset.name)


def test_metadata_from_csv_and_json_becomes_filterable(team, dataset):
    _ingest(team, dataset, [("a.jpg", 1), ("b.jpg", 2), ("c.jpg", 3)])
    csv = b"file_name,lighting,exposure\na.jpg,dark,0.5\nb.jpg,bright,2\nmissing.jpg,dark,1\n"
    report = svc.image_metadata_bulk_set(
        actor=team["lead"], project=team["project"], content=csv, filename="m.csv"
    )
    assert report == {
        "updated": 2,
        "unmatched": ["missing.jpg"],
        "fields": ["exposure", "lighting"],
    }
    data = json.dumps({"c.jpg": {"lighting": "dark", "camera": "north"}}).encode()
    svc.image_metadata_bulk_set(
        actor=team["lead"], project=team["project"], content=data, filename="m.json"
    )

    team["project"].refresh_from_db()
    params = {"meta.lighting": "dark"}
    filters = selectors.metadata_filters_from_params(project=team["project"], params=params)
    names = selectors.image_list(
        user=team["viewer"], project=team["project"], metadata=filters
    ).values_list("original_name", flat=True)
    assert sorted(names) == ["a.jpg", "c.jpg"]
    numeric = selectors.image_list(
        user=team["viewer"], project=team["project"], metadata={"exposure": "2"}
    )
    assert [i.original_name for i in numeric] == ["b.jpg"]
    with pytest.raises(ApplicationError, match="Cannot filter on metadata field 'secret'"):
        selectors.metadata_filters_from_params(project=team["project"], params={"meta.secret": "x"})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,lighting\na.jpg,dark\n", "file_name"),
        (b"file_name,bad key\na.jpg,1\n", "field name"),
        (b'{"a.jpg": {"nested": {"x": 1}}}', "single value"),
        (b'{"a.jpg": 3}', "must be an object"),
        (b"{not json", "not valid"),
        (b"\xff\xfe\x00", "UTF-8"),
    ],
)
def test_bad_metadata_files_change_nothing(team, dataset, content, message):
    _ingest(team, dataset, [("a.jpg", 1)])
    with pytest.raises(ApplicationError, match=message):
        svc.image_metadata_bulk_set(
            actor=team["lead"], project=team["project"], content=content, filename="m"
        )
    assert dataset.images.get().metadata == {}


def test_non_finite_numbers_and_lookup_like_keys_in_metadata(team, dataset):
    _ingest(team, dataset, [("a.jpg", 1)])
    project = team["project"]
    report = svc.image_metadata_bulk_set(
        actor=team["lead"],
        project=project,
        content=b"file_name,score\na.jpg,nan\n",
        filename="m.csv",
    )
    assert report["updated"] == 1 and dataset.images.get().metadata == {
        "score": "nan"
    }  # kept as text
    for content, message in [
        (b'{"a.jpg": {"score": NaN}}', "not valid"),
        (b'{"a.jpg": {"score": 1e999}}', "not a finite number"),
        (b'{"a.jpg": {"cam__model": "x"}}', "single underscores"),
        (b'{"a.jpg": {"x__gt": 1}}', "single underscores"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"file_name,big\na.jpg," + b"x" * 200_000 + b"\n", "CSV is not valid"),
    ]:
        with pytest.raises(ApplicationError, match=message):
            svc.image_metadata_bulk_set(
                actor=team["lead"], project=project, content=content, filename="m"
            )
    project.refresh_from_db()
    for value in ("nan", "inf", "-Infinity"):
        filters = selectors.metadata_filters_from_params(
            project=project, params={"meta.score": value}
        )
        assert [
            i.original_name
            for i in selectors.image_list(user=team["lead"], project=project, metadata=filters)
        ] == (["a.jpg"] if value == "nan" else [])
