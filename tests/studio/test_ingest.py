"""The ingest job (studio/services/ingest.py), run through the job service."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from studio.errors import Forbidden, NotFound, UploadRejected
from studio.models import DatasetVersion, Image, IngestFile, Job
from studio.services.ingest import CHUNK, ingest_run, upload_create
from studio.services.jobs import JobContext, job_cancel, job_claim, job_run, jobs_sweep
from tests.factories import image_bytes, make_dataset, png_bomb, upload, zip_bytes
from tests.jobs import DyingContext, WorkerKilled


def _stored_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def ingest(team, dataset, files, user=None) -> Job:
    job = upload_create(
        actor=user or team["lead"], project=team["project"], dataset=dataset, files=files
    )
    job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def outcomes(job: Job) -> dict[str, tuple[str, str]]:
    return {f.name: (f.outcome, f.reason) for f in job.files.all()}


def test_zip_with_good_and_bad_files_reports_each_file(team, dataset, settings):
    archive = zip_bytes(
        {
            "photos/a.jpg": image_bytes(1),
            "photos/b.png": image_bytes(2, fmt="PNG"),
            "photos/b-again.png": image_bytes(2, fmt="PNG"),
            "photos/notes.txt": b"not an image",
            "photos/fake.jpg": b"<svg onload=alert(1)>",
            "photos/cut.jpg": image_bytes(3, (300, 300))[:2000],
            "photos/bomb.png": png_bomb(),
            "../escape.jpg": image_bytes(4),
        }
    )
    job = ingest(team, dataset, [upload("batch.zip", archive)])

    assert job.status == Job.Status.SUCCEEDED, job.error
    got = outcomes(job)
    assert got["batch.zip/photos/a.jpg"][0] == "accepted"
    assert got["batch.zip/photos/b.png"][0] == "accepted"
    assert got["batch.zip/photos/b-again.png"] == (
        "duplicate",
        got["batch.zip/photos/b-again.png"][1],
    )
    assert "same content as b.png" in got["batch.zip/photos/b-again.png"][1]
    assert got["batch.zip/photos/notes.txt"][0] == "rejected"
    assert "not a supported image" in got["batch.zip/photos/fake.jpg"][1]
    assert "truncated" in got["batch.zip/photos/cut.jpg"][1]
    assert "pixels" in got["batch.zip/photos/bomb.png"][1]
    assert "escapes" in got["batch.zip/../escape.jpg"][1]
    assert job.result == {
        "accepted": 2,
        "duplicate": 1,
        "rejected": 5,
        "dataset": dataset.pk,
        "version": 1,
    }
    assert job.progress == 100

    images = Image.objects.filter(project=team["project"])
    assert images.count() == 2
    # Every row points to files that exist, and nothing else was left behind (no staging).
    stored = _stored_files(settings.MEDIA_ROOT)
    for image in images:
        assert default_storage.exists(image.file.name) and default_storage.exists(
            image.thumbnail.name
        )
    assert len(stored) == 4 and not any("/staging/" in p for p in stored)
    version = DatasetVersion.objects.get(dataset=dataset)
    assert version.number == 1 and version.image_count == 2 and version.source_job == job


def test_loose_files_and_duplicates_across_uploads(team, dataset):
    first = ingest(
        team,
        dataset,
        [upload("x.jpg", image_bytes(10)), upload("y.webp", image_bytes(11, fmt="WEBP"))],
    )
    assert first.result["accepted"] == 2
    second = ingest(
        team, dataset, [upload("x-copy.jpg", image_bytes(10)), upload("z.jpg", image_bytes(12))]
    )
    assert second.result == {
        "accepted": 1,
        "duplicate": 1,
        "rejected": 0,
        "dataset": dataset.pk,
        "version": 2,
    }
    assert Image.objects.filter(project=team["project"]).count() == 3
    # The same bytes in another project are that project's own image.
    other_ds = make_dataset(team["other"], team["outsider"])
    job = upload_create(
        actor=team["outsider"],
        project=team["other"],
        dataset=other_ds,
        files=[upload("x.jpg", image_bytes(10))],
    )
    job_run(job_id=job.pk)
    assert IngestFile.objects.get(job=job).outcome == "accepted"


def test_same_duplicate_upload_makes_no_new_version(team, dataset):
    ingest(team, dataset, [upload("x.jpg", image_bytes(20))])
    again = ingest(team, dataset, [upload("x.jpg", image_bytes(20))])
    assert again.result["version"] == 1
    assert DatasetVersion.objects.filter(dataset=dataset).count() == 1


def test_whole_archive_problems_reject_the_upload_and_leave_nothing(team, dataset, settings):
    settings.STUDIO = {**settings.STUDIO, "MAX_ARCHIVE_ENTRIES": 3}
    archive = zip_bytes({f"{i}.jpg": image_bytes(i) for i in range(4)})
    with pytest.raises(UploadRejected, match="4 files; the limit is 3"):
        upload_create(
            actor=team["lead"],
            project=team["project"],
            dataset=dataset,
            files=[upload("ok.jpg", image_bytes(1)), upload("big.zip", archive)],
        )
    assert not Job.objects.exists()
    assert _stored_files(settings.MEDIA_ROOT) == []


class BrokenStream(io.BytesIO):
    """An upload whose client went away half-way: reading past the first bytes fails."""

    name = "interrupted.jpg"
    size = 10_000

    def read(self, n=-1):
        if self.tell() > 0:
            raise ConnectionResetError("client disconnected")
        return super().read(10)

    def chunks(self, chunk_size=None):
        yield self.read(10)
        yield self.read(10)


def test_interrupted_upload_leaves_nothing_behind(team, dataset, settings):
    with pytest.raises(ConnectionResetError):
        upload_create(
            actor=team["lead"],
            project=team["project"],
            dataset=dataset,
            files=[upload("fine.jpg", image_bytes(1)), BrokenStream(b"0" * 100)],
        )
    assert not Job.objects.exists()
    assert _stored_files(settings.MEDIA_ROOT) == []


def test_per_file_byte_limit(team, dataset, settings):
    settings.STUDIO = {**settings.STUDIO, "MAX_FILE_BYTES": 5000}
    job = ingest(
        team,
        dataset,
        [
            upload("big.png", image_bytes(1, (200, 200), "PNG")),
            upload("ok.jpg", image_bytes(2, (16, 16))),
        ],
    )
    got = outcomes(job)
    assert got["big.png"][0] == "rejected" and "limit" in got["big.png"][1]
    assert got["ok.jpg"][0] == "accepted"


def test_job_killed_mid_chunk_resumes_and_stores_everything_once(team, dataset, settings):
    settings.STUDIO = {**settings.STUDIO, "JOB_STALE_AFTER_S": 0}
    names = [f"{i:03d}.jpg" for i in range(100)]
    files = [upload(n, image_bytes(i % 90)) for i, n in enumerate(names)]  # 10 duplicates
    job = upload_create(actor=team["lead"], project=team["project"], dataset=dataset, files=files)
    job = job_claim(job.pk)
    with pytest.raises(WorkerKilled):
        ingest_run(job, DyingContext(job, die_at=3))
    job.refresh_from_db()
    assert job.status == "running" and job.checkpoint == {"next": 2 * CHUNK, "total": 100}
    assert IngestFile.objects.filter(job=job).count() == 2 * CHUNK
    # The third chunk's files reached storage before the kill; its rows did not.
    assert len(_stored_files(settings.MEDIA_ROOT / "projects")) > 4 * CHUNK

    assert jobs_sweep() == [job.pk]  # the worker went silent: the sweeper re-queues it
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 2
    assert [f.name for f in job.files.all()] == names
    assert job.result["accepted"] == 90 and job.result["duplicate"] == 10
    assert Image.objects.filter(project=team["project"]).count() == 90
    assert len(_stored_files(settings.MEDIA_ROOT / "projects")) == 180  # original + thumbnail each
    assert not [p for p in _stored_files(settings.MEDIA_ROOT) if "/staging/" in p]


def test_upload_needs_contributor_role_and_membership(team, dataset):
    with pytest.raises(Forbidden):
        upload_create(
            actor=team["annotator"],
            project=team["project"],
            dataset=dataset,
            files=[upload("a.jpg", image_bytes(1))],
        )
    with pytest.raises(NotFound):
        upload_create(
            actor=team["outsider"],
            project=team["project"],
            dataset=dataset,
            files=[upload("a.jpg", image_bytes(1))],
        )
    job = ingest(team, dataset, [upload("a.jpg", image_bytes(1))], user=team["reviewer"])
    assert job.status == "succeeded"


def test_no_files_is_a_clear_error(team, dataset):
    with pytest.raises(UploadRejected, match="No files"):
        upload_create(actor=team["lead"], project=team["project"], dataset=dataset, files=[])


def test_half_written_original_from_a_killed_worker_is_replaced_on_resume(
    team, dataset, settings, monkeypatch
):
    """SIGKILL during a file write leaves the right name with wrong bytes; resume must not trust it."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import FileSystemStorage

    settings.STUDIO = {**settings.STUDIO, "JOB_STALE_AFTER_S": 0, "INGEST_THREADS": 1}
    data = image_bytes(7, (200, 200), "PNG")
    job = upload_create(
        actor=team["lead"], project=team["project"], dataset=dataset, files=[upload("a.png", data)]
    )
    real_save = FileSystemStorage.save

    def dying_save(self, name, content, *args, **kwargs):
        if "/images/" in name:
            real_save(self, name, ContentFile(content.read()[:100]))
            raise WorkerKilled()
        return real_save(self, name, content, *args, **kwargs)

    monkeypatch.setattr(FileSystemStorage, "save", dying_save)
    claimed = job_claim(job.pk)
    with pytest.raises(WorkerKilled):
        ingest_run(claimed, JobContext(claimed))
    monkeypatch.setattr(FileSystemStorage, "save", real_save)
    jobs_sweep()
    job_run(job_id=job.pk)
    image = Image.objects.get(project=team["project"])
    with default_storage.open(image.file.name, "rb") as fh:
        assert fh.read() == data


def test_job_killed_after_its_last_chunk_finishes_on_resume(team, dataset, settings):
    settings.STUDIO = {**settings.STUDIO, "JOB_STALE_AFTER_S": 0}
    archive = zip_bytes({"a.jpg": image_bytes(1), "b.jpg": image_bytes(2)})
    job = upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=dataset,
        files=[upload("b.zip", archive)],
    )
    claimed = job_claim(job.pk)
    ingest_run(
        claimed, JobContext(claimed)
    )  # the work is done; the worker dies before recording it
    assert jobs_sweep() == [job.pk]
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.result["accepted"] == 2 and job.attempts == 2


def test_final_states_discard_staged_uploads(team, dataset, settings):
    cancelled = upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=dataset,
        files=[upload("a.jpg", image_bytes(1))],
    )
    job_cancel(actor=team["lead"], job=cancelled)
    assert not [p for p in _stored_files(settings.MEDIA_ROOT) if "/staging/" in p]
    done = ingest(team, dataset, [upload("b.jpg", image_bytes(2))])
    assert done.status == "succeeded"
    assert not [p for p in _stored_files(settings.MEDIA_ROOT) if "/staging/" in p]


def test_oversized_loose_file_is_rejected_without_being_stored(team, dataset, settings):
    settings.STUDIO = {**settings.STUDIO, "MAX_FILE_BYTES": 1000}
    job = upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=dataset,
        files=[upload("huge.jpg", b"\xff" * 1_000_000)],
    )
    assert sum(p.stat().st_size for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()) < 1_000_000
    job_run(job_id=job.pk)
    assert outcomes(Job.objects.get(pk=job.pk))["huge.jpg"] == (
        "rejected",
        "file is 1,000,000 bytes; the limit is 1,000",
    )


def test_damaged_and_multi_picture_members_are_per_file_results(team, dataset):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.jpg", image_bytes(1))
        zf.writestr("bad.png", image_bytes(2, fmt="PNG"))
    data = bytearray(buf.getvalue())
    second = data.find(b"PK\x03\x04", 10)
    data[second + 30 + len("bad.png")] = 0xFF  # corrupt the deflate stream of bad.png
    a, b = PILImage.new("RGB", (32, 32), "red"), PILImage.new("RGB", (32, 32), "blue")
    mpo = io.BytesIO()
    a.save(mpo, "MPO", save_all=True, append_images=[b])
    job = ingest(
        team, dataset, [upload("set.zip", bytes(data)), upload("phone.jpg", mpo.getvalue())]
    )
    got = outcomes(job)
    assert job.status == "succeeded"
    assert got["set.zip/good.jpg"][0] == "accepted" and got["set.zip/bad.png"][0] == "rejected"
    assert got["phone.jpg"][0] == "accepted"


def test_the_same_image_many_times_in_one_upload_is_stored_once_first_time(team, dataset, settings):
    """Copies decoded on parallel threads must not delete each other's file mid-write."""
    settings.STUDIO = {**settings.STUDIO, "INGEST_THREADS": 4}
    data = image_bytes(size=(1600, 1200))  # big enough that a write takes a while
    files = [upload(f"copy-{i}.jpg", data) for i in range(24)]
    job = upload_create(actor=team["lead"], project=team["project"], dataset=dataset, files=files)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == ("succeeded", 1, "")
    outcomes = list(IngestFile.objects.filter(job=job).values_list("outcome", flat=True))
    assert outcomes.count("accepted") == 1 and outcomes.count("duplicate") == 23
    image = Image.objects.get(project=team["project"])
    with default_storage.open(image.file.name, "rb") as fh:
        assert fh.read() == data
