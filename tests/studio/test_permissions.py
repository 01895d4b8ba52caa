"""Role × API route × verb: the exact answer each role gets, for every route there is.

The routes come from the URL resolver, so a new route or verb without a row in ``MATRIX``
fails ``test_every_api_route_and_verb_is_in_the_matrix``. Each row names the answer of
every role: the success status for the roles allowed, 403 (``forbidden``) for members
whose role lacks the right, 404 for outsiders (they cannot learn that the project
exists), and 401 with ``WWW-Authenticate: Token`` for anonymous callers.

The project and its data (a real upload, embeddings, clusters, queues, a consensus
result, an export) are built once for the module; every request runs in a transaction
that is rolled back, so a DELETE or a submission in one case is gone for the next.
"""

from __future__ import annotations

import io
import re

import pytest
import skimage.data
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver

from annotation.models import AnnotationQueue, Cluster, DuplicateMember
from annotation.services import export as export_services
from annotation.services import labels
from annotation.services import queues as queue_services
from annotation.services.curation import analyze_job_start, cluster_job_start
from annotation.services.embeddings import embedding_job_start
from studio.models import DatasetVersion, Job, Membership, Project
from studio.services.ingest import upload_create
from studio.services.jobs import job_create, job_run
from studio.services.projects import objective_create, problem_statement_set
from tests.annotation.conftest import jpeg
from tests.factories import PASSWORD, image_bytes, make_dataset, make_project, make_user, upload

ROLES = ["lead", "reviewer", "annotator", "viewer", "outsider", "anonymous"]
MEMBERS = ["lead", "reviewer", "annotator", "viewer"]

# Who may: each maps the member roles allowed; other members get 403.
VIEW = {"lead", "reviewer", "annotator", "viewer"}
ANNOTATE = {"lead", "reviewer", "annotator"}  # everyone but viewers
CONTRIBUTE = {"lead", "reviewer"}
REVIEW = {"lead", "reviewer"}
MANAGE = {"lead"}
SEE_ALL_LABELS = {"lead", "reviewer", "viewer"}  # export: not annotators


def member_route(ok: int, allowed: set[str]) -> dict[str, int]:
    """A route under a project: ``ok`` for the roles allowed, 403, 404, 401 for the rest."""
    answers = {role: (ok if role in allowed else 403) for role in MEMBERS}
    return {**answers, "outsider": 404, "anonymous": 401}


def any_user(ok: int) -> dict[str, int]:
    """A route outside any project: every signed-in user gets ``ok``."""
    return {**dict.fromkeys(ROLES[:-1], ok), "anonymous": 401}


P = "api/v1/projects/<slug:slug>/"
V = P + "datasets/<id:pk>/versions/<id:number>/"
# (route, verb) -> (path, body, answers). The path's {names} come from the world below;
# {mine} is an object of the caller's own (their task). Bodies are valid, so a refusal
# is the permission's.
MATRIX: dict[tuple[str, str], tuple[str, object, dict[str, int]]] = {
    ("api/v1/auth/token/", "post"): ("/api/v1/auth/token/", "credentials", dict.fromkeys(ROLES, 200)),
    ("api/v1/formats/", "get"): ("/api/v1/formats/", None, any_user(200)),
    ("api/v1/projects/", "get"): ("/api/v1/projects/", None, any_user(200)),
    ("api/v1/projects/", "post"): ("/api/v1/projects/", {"name": "Another"}, any_user(201)),
    ("api/v1/jobs/", "get"): ("/api/v1/jobs/", None, any_user(200)),
    (P, "get"): ("{p}/", None, member_route(200, VIEW)),
    (P, "patch"): ("{p}/", {"name": "Renamed"}, member_route(200, MANAGE)),
    (P, "delete"): ("{p}/?confirm={slug}", None, member_route(204, MANAGE)),
    (P + "members/", "get"): ("{p}/members/", None, member_route(200, VIEW)),
    (P + "members/", "post"): ("{p}/members/", {"username": "newcomer", "role": "viewer"}, member_route(201, MANAGE)),
    (P + "members/<id:pk>/", "get"): ("{p}/members/{member}/", None, member_route(200, VIEW)),
    (P + "members/<id:pk>/", "patch"): ("{p}/members/{member}/", {"role": "reviewer"}, member_route(200, MANAGE)),
    (P + "members/<id:pk>/", "delete"): ("{p}/members/{member}/", None, member_route(204, MANAGE)),
    (P + "objectives/", "get"): ("{p}/objectives/", None, member_route(200, VIEW)),
    (P + "objectives/", "post"): ("{p}/objectives/", {"title": "t", "kpi": "k", "target_value": 1}, member_route(201, MANAGE)),
    (P + "objectives/<id:pk>/", "get"): ("{p}/objectives/{objective}/", None, member_route(200, VIEW)),
    (P + "objectives/<id:pk>/", "patch"): ("{p}/objectives/{objective}/", {"status": "met"}, member_route(200, MANAGE)),
    (P + "objectives/<id:pk>/", "delete"): ("{p}/objectives/{objective}/", None, member_route(204, MANAGE)),
    (P + "problem/", "get"): ("{p}/problem/", None, member_route(200, VIEW)),
    (P + "problem/", "put"): ("{p}/problem/", {"task_type": "detection"}, member_route(200, MANAGE)),
    (P + "datasets/", "get"): ("{p}/datasets/", None, member_route(200, VIEW)),
    (P + "datasets/", "post"): ("{p}/datasets/", {"name": "New set"}, member_route(201, CONTRIBUTE)),
    (P + "datasets/<id:pk>/", "get"): ("{p}/datasets/{dataset}/", None, member_route(200, VIEW)),
    (P + "datasets/<id:pk>/versions/", "get"): ("{p}/datasets/{dataset}/versions/", None, member_route(200, VIEW)),
    # Nothing changed since version 1: 200 with it, not 201.
    (P + "datasets/<id:pk>/versions/", "post"): ("{p}/datasets/{dataset}/versions/", {"note": "n"}, member_route(200, CONTRIBUTE)),
    (V, "get"): ("{v}/", None, member_route(200, VIEW)),
    (P + "images/", "get"): ("{p}/images/", None, member_route(200, VIEW)),
    (P + "images/metadata/", "post"): ("{p}/images/metadata/", "metadata", member_route(200, CONTRIBUTE)),
    (P + "images/<id:pk>/", "get"): ("{p}/images/{image}/", None, member_route(200, VIEW)),
    (P + "uploads/", "post"): ("{p}/uploads/", "upload", member_route(202, CONTRIBUTE)),
    ("api/v1/jobs/<id:pk>/", "get"): ("/api/v1/jobs/{job}/", None, member_route(200, VIEW)),
    ("api/v1/jobs/<id:pk>/cancel/", "post"): ("/api/v1/jobs/{queued_job}/cancel/", None, member_route(200, CONTRIBUTE)),
    ("api/v1/jobs/<id:pk>/retry/", "post"): ("/api/v1/jobs/{failed_job}/retry/", None, member_route(200, CONTRIBUTE)),
    ("api/v1/jobs/<id:pk>/files/", "get"): ("/api/v1/jobs/{job}/files/", None, member_route(200, VIEW)),
    ("api/v1/jobs/<id:pk>/download/", "get"): ("/api/v1/jobs/{export_job}/download/", None, member_route(200, SEE_ALL_LABELS)),
    # Curation.
    (V + "embed/", "post"): ("{v}/embed/", {}, member_route(202, CONTRIBUTE)),
    # Without "confirm": the preview of the version it would make, nothing changed.
    (V + "restore/", "post"): ("{v}/restore/", {}, member_route(200, CONTRIBUTE)),
    (V + "cluster/", "post"): ("{v}/cluster/", {"k": 2}, member_route(202, CONTRIBUTE)),
    (V + "analyze/", "post"): ("{v}/analyze/", {}, member_route(202, CONTRIBUTE)),
    (V + "clusters/", "get"): ("{v}/clusters/", None, member_route(200, VIEW)),
    (V + "duplicates/", "get"): ("{v}/duplicates/", None, member_route(200, VIEW)),
    (V + "outliers/", "get"): ("{v}/outliers/", None, member_route(200, VIEW)),
    (V + "map/", "get"): ("{v}/map/", None, member_route(200, VIEW)),
    (P + "clusters/<id:cluster_id>/", "patch"): ("{p}/clusters/{cluster}/", {"name": "Cats"}, member_route(200, CONTRIBUTE)),
    (P + "duplicates/<id:member_id>/keep/", "post"): ("{p}/duplicates/{duplicate}/keep/", None, member_route(200, CONTRIBUTE)),
    (P + "datasets/<id:pk>/curate/", "post"): ("{p}/datasets/{dataset}/curate/", "curate", member_route(200, CONTRIBUTE)),
    (P + "checkpoints/", "get"): ("{p}/checkpoints/", None, member_route(200, VIEW)),
    # A file that is no checkpoint: the allowed get the validation's 400, the rest 403.
    (P + "checkpoints/", "post"): ("{p}/checkpoints/", "checkpoint", member_route(400, CONTRIBUTE)),
    (P + "images/<id:pk>/similar/", "get"): ("{p}/images/{image}/similar/", None, member_route(200, VIEW)),
    # Labelling.
    (V + "propagate-tags/", "post"): ("{v}/propagate-tags/", {}, member_route(200, CONTRIBUTE)),
    (P + "images/<id:pk>/preannotate/", "post"): ("{p}/images/{free_image}/preannotate/", "preannotate", member_route(201, ANNOTATE)),
    (P + "images/<id:pk>/preannotate/prepare/", "post"): ("{p}/images/{free_image}/preannotate/prepare/", None, member_route(200, ANNOTATE)),
    (P + "preannotate-jobs/", "post"): ("{p}/preannotate-jobs/", "preannotate_job", member_route(202, CONTRIBUTE)),
    (P + "label-classes/", "get"): ("{p}/label-classes/", None, member_route(200, VIEW)),
    (P + "label-classes/", "post"): ("{p}/label-classes/", {"name": "wheel", "kind": "box"}, member_route(201, MANAGE)),
    (P + "label-classes/<id:pk>/", "patch"): ("{p}/label-classes/{spare_class}/", {"colour": "#112233"}, member_route(200, MANAGE)),
    (P + "label-classes/<id:pk>/", "delete"): ("{p}/label-classes/{spare_class}/", None, member_route(204, MANAGE)),
    (P + "images/<id:pk>/annotations/", "get"): ("{p}/images/{image}/annotations/", None, member_route(200, VIEW)),
    (P + "images/<id:pk>/annotations/", "post"): ("{p}/images/{free_image}/annotations/", "annotation", member_route(201, ANNOTATE)),
    (P + "annotations/<id:pk>/", "get"): ("{p}/annotations/{annotation}/", None, member_route(200, VIEW)),
    (P + "annotations/<id:pk>/", "patch"): ("{p}/annotations/{mine_annotation}/", "annotation_update", member_route(200, ANNOTATE)),
    (P + "annotations/<id:pk>/", "delete"): ("{p}/annotations/{mine_annotation}/?version=2", None, member_route(200, ANNOTATE)),
    (P + "annotations/<id:pk>/history/", "get"): ("{p}/annotations/{annotation}/history/", None, member_route(200, VIEW)),
    (P + "annotations/<id:pk>/history/<id:revision_id>/restore/", "post"): ("{p}/annotations/{mine_annotation}/history/{mine_revision}/restore/", None, member_route(200, ANNOTATE)),
    (P + "annotations/<id:pk>/review/", "post"): ("{p}/annotations/{submitted}/review/", {"decision": "accept"}, member_route(200, REVIEW)),
    # Queues and quality control.
    (P + "queues/", "get"): ("{p}/queues/", None, member_route(200, VIEW)),
    (P + "queues/", "post"): ("{p}/queues/", "queue", member_route(201, MANAGE)),
    (P + "queues/<id:pk>/next/", "post"): ("{p}/queues/{free_queue}/next/", None, member_route(200, ANNOTATE)),
    (P + "queue-items/<id:pk>/submit/", "post"): ("{p}/queue-items/{mine_task}/submit/", None, member_route(200, ANNOTATE)),
    # The world's queue holds nothing else for the skipper: 204, no next task.
    (P + "queue-items/<id:pk>/skip/", "post"): ("{p}/queue-items/{mine_task}/skip/", None, member_route(204, ANNOTATE)),
    (P + "quality/", "get"): ("{p}/quality/", None, member_route(200, VIEW)),
    (P + "queues/<id:pk>/stats/", "get"): ("{p}/queues/{consensus_queue}/stats/", None, member_route(200, VIEW)),
    (P + "queues/<id:pk>/honeypots/", "get"): ("{p}/queues/{free_queue}/honeypots/", None, member_route(200, REVIEW)),
    (P + "queues/<id:pk>/honeypots/", "post"): ("{p}/queues/{free_queue}/honeypots/", "honeypot", member_route(201, MANAGE)),
    (P + "queues/<id:pk>/consensus/", "get"): ("{p}/queues/{consensus_queue}/consensus/", None, member_route(200, REVIEW)),
    (P + "queues/<id:pk>/consensus/<id:image_id>/merge/", "post"): ("{p}/queues/{consensus_queue}/consensus/{consensus_image}/merge/", None, member_route(201, REVIEW)),
    # Export and import.
    (V + "export/", "post"): ("{v}/export/", {"format": "coco"}, member_route(202, SEE_ALL_LABELS)),
    (V + "import/", "post"): ("{v}/import/", "import", member_route(202, ANNOTATE)),
}  # fmt: skip

VERBS = ("get", "post", "put", "patch", "delete")


def api_routes(resolver: URLResolver | None = None, prefix: str = ""):
    """Yield (route, verb) for every view under /api/v1/ and every verb its class answers."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from api_routes(entry, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/v1/"):
            view = getattr(entry.callback, "cls", None) or entry.callback.view_class
            for verb in VERBS:
                if hasattr(view, verb):
                    yield route, verb


def test_every_api_route_and_verb_is_in_the_matrix():
    found = set(api_routes())
    assert len(found) >= 76
    assert sorted(found - set(MATRIX)) == [], "add these routes to MATRIX"
    assert sorted(set(MATRIX) - found) == [], "MATRIX names routes that no longer exist"


# --- the world -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _module_media(tmp_path_factory):
    return tmp_path_factory.mktemp("matrix-media")


@pytest.fixture(autouse=True)
def _media(settings, _module_media):
    """The module's files (images, embeddings, the export) outlive a single test here."""
    settings.MEDIA_ROOT = _module_media


def _build(media) -> dict:
    from django.conf import settings

    settings.MEDIA_ROOT = media
    users = {role: make_user(role) for role in ("lead", "reviewer", "annotator", "viewer")}
    lead = users["lead"]
    project = make_project(lead, "Matrix project", reviewer=users["reviewer"],
                           annotator=users["annotator"], viewer=users["viewer"])  # fmt: skip
    users["outsider"] = make_user("outsider")
    make_project(users["outsider"], "Outsider project")
    make_user("newcomer")
    extra = make_user("extra")
    member = Membership.objects.create(project=project, user=extra, role="annotator")
    objective = objective_create(actor=lead, project=project, title="G", kpi="k", target_value=1)
    problem_statement_set(actor=lead, project=project, task_type="classification")
    dataset = make_dataset(project, lead)
    photos = [("astronaut", None), ("coffee", None), ("chelsea", None), ("chelsea", (225, 150)),
              ("rocket", None), ("camera", None)]  # fmt: skip
    files = [upload(f"{n}-{i}.jpg", jpeg(getattr(skimage.data, n)(), size))
             for i, (n, size) in enumerate(photos)]  # fmt: skip
    ingest = upload_create(actor=lead, project=project, dataset=dataset, files=files)
    job_run(job_id=ingest.pk)
    version = DatasetVersion.objects.get(dataset=dataset)
    img = list(version.items.order_by("image_id").values_list("image_id", flat=True))
    job_run(
        job_id=embedding_job_start(actor=lead, version=version, backbone="efficientnet_lite0").pk
    )
    job_run(job_id=analyze_job_start(actor=lead, version=version, threshold=0.8).pk)
    job_run(job_id=cluster_job_start(actor=lead, version=version, k=2).pk)

    box = labels.label_class_create(actor=lead, project=project, name="sign", kind="box")
    mask = labels.label_class_create(actor=lead, project=project, name="blob", kind="mask")
    tag = labels.label_class_create(actor=lead, project=project, name="scene", kind="tag")
    spare = labels.label_class_create(actor=lead, project=project, name="spare", kind="box")
    images = {i.pk: i for i in project.images.all()}
    gold = labels.annotation_create(actor=lead, image=images[img[0]], label_class=box,
                                    geometry=[5, 5, 40, 40], status="submitted")  # fmt: skip
    queue_services.annotation_review(actor=lead, annotation=gold, decision="accept")
    labels.annotation_create(actor=lead, image=images[img[0]], label_class=tag, geometry=None,
                             status="submitted")  # fmt: skip
    submitted = labels.annotation_create(actor=users["annotator"], image=images[img[1]],
                                         label_class=box, geometry=[1, 1, 9, 9], status="submitted")  # fmt: skip

    # Each annotating role holds a task with a draft of their own on it.
    mine = {}
    tasks = queue_services.queue_create(
        actor=lead, project=project, name="Tasks", image_ids=img[2:5]
    )
    for role in ("lead", "reviewer", "annotator"):
        item = queue_services.queue_next(actor=users[role], queue=tasks)
        draft = labels.annotation_create(actor=users[role], image=item.image, label_class=box,
                                         geometry=[2, 2, 8, 8])  # fmt: skip
        labels.annotation_update(actor=users[role], annotation=draft, expected_version=draft.version,
                                 geometry=[3, 3, 8, 8])  # fmt: skip
        mine[role] = {"task": item.pk, "annotation": draft.pk,
                      "revision": draft.revisions.order_by("id").first().pk}  # fmt: skip
    free_queue = queue_services.queue_create(
        actor=lead, project=project, name="Free", image_ids=[img[5]]
    )
    consensus = queue_services.queue_create(actor=lead, project=project, name="Consensus",
                                            image_ids=[img[1]], annotators_per_image=2)  # fmt: skip
    for user in (users["annotator"], extra):
        item = queue_services.queue_next(actor=user, queue=consensus)
        labels.annotation_create(
            actor=user, image=item.image, label_class=box, geometry=[1, 1, 9, 9]
        )
        queue_services.queue_submit(actor=user, item=item)

    queued = upload_create(actor=lead, project=project, dataset=dataset,
                           files=[upload("q.jpg", image_bytes(7))])  # fmt: skip
    failed = job_create(project=project, kind=Job.Kind.EMBED, created_by=lead, params={})
    Job.objects.filter(pk=failed.pk).update(status=Job.Status.FAILED, error="boom")
    export = export_services.export_start(actor=lead, version=version, fmt="coco")
    job_run(job_id=export.pk)
    base = f"/api/v1/projects/{project.slug}"
    return {
        "users": users, "mine": mine, "project": project.pk,
        "ids": {
            "p": base, "slug": project.slug,
            "v": f"{base}/datasets/{dataset.pk}/versions/{version.number}",
            "dataset": dataset.pk, "member": member.pk, "objective": objective.pk,
            "image": img[0], "free_image": img[5], "job": ingest.pk, "queued_job": queued.pk,
            "failed_job": failed.pk, "export_job": export.pk,
            "cluster": Cluster.objects.filter(run__version=version).first().pk,
            "duplicate": DuplicateMember.objects.filter(group__version=version).first().pk,
            "spare_class": spare.pk, "mask_class": mask.pk, "box_class": box.pk,
            "annotation": gold.pk, "submitted": submitted.pk,
            "free_queue": free_queue.pk, "consensus_queue": consensus.pk,
            "consensus_image": img[1], "images": img, "version_id": version.pk,
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, _module_media):
    with django_db_blocker.unblock():
        built = _build(_module_media)
        yield built
        Project.objects.filter(memberships__user__username="lead").delete()
        Project.objects.filter(memberships__user__username="outsider").delete()
        get_user_model().objects.filter(
            username__in=["lead", "reviewer", "annotator", "viewer", "outsider", "newcomer",
                          "extra"]
        ).delete()  # fmt: skip


def _body(body, world, role):
    ids = world["ids"]
    if body == "credentials":
        return {"username": "lead" if role == "anonymous" else role, "password": PASSWORD}, "json"
    if body == "metadata":
        return {"file": upload("m.csv", b"file_name,site\nastronaut-0.jpg,north\n")}, "multipart"
    if body == "upload":
        return {"dataset": ids["dataset"], "files": [upload("c.jpg", image_bytes(3))]}, "multipart"
    if body == "curate":
        return {"action": "set_metadata", "image_ids": ids["images"][:2], "field": "site",
                "value": "north"}, "json"  # fmt: skip
    if body == "checkpoint":
        return {"name": "mine", "architecture": "efficientnet_lite0",
                "file": upload("w.pt", b"not a checkpoint")}, "multipart"  # fmt: skip
    if body == "preannotate":
        return {
            "label_class": ids["mask_class"],
            "method": "grabcut",
            "box": [100, 40, 250, 420],  # the cameraman in skimage's camera
        }, "json"
    if body == "preannotate_job":
        return {"mode": "boxes_to_masks", "label_class": ids["mask_class"],
                "queue": ids["free_queue"], "params": {"method": "grabcut"}}, "json"  # fmt: skip
    if body == "annotation":
        return {"label_class": ids["box_class"], "geometry": [1, 1, 5, 5]}, "json"
    if body == "annotation_update":
        return {"version": 2, "geometry": [4, 4, 8, 8]}, "json"
    if body == "queue":
        return {"name": "New queue", "image_ids": ids["images"][:1]}, "json"
    if body == "honeypot":
        return {"image_ids": [ids["image"]]}, "json"
    if body == "import":
        doc = (b'{"images": [{"id": 1, "file_name": "coffee-1.jpg", "width": 400, "height": 300}],'
               b' "annotations": [], "categories": [{"id": 1, "name": "sign"}]}')  # fmt: skip
        f = io.BytesIO(doc)
        f.name = "a.json"
        return {"format": "coco", "file": f, "dry_run": True}, "multipart"
    return body, "json"


def _path(template: str, world, role: str) -> str:
    mine = world["mine"].get(role) or world["mine"]["annotator"]
    values = {**world["ids"], **{f"mine_{k}": v for k, v in mine.items()}}
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), template)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("key", list(MATRIX), ids=[f"{v} {r}" for r, v in MATRIX])
def test_permission_matrix(api, db, world, role, key):
    template, body, answers = MATRIX[key]
    verb = key[1]
    client = api(None if role == "anonymous" else world["users"][role])
    data, fmt = _body(body, world, role)
    url = _path(template, world, role)
    response = getattr(client, verb)(url, data, format=fmt)
    expected = answers[role]
    content = b"".join(response) if hasattr(response, "streaming_content") else response.content
    assert response.status_code == expected, (response.status_code, content[:300])
    if expected == 401:
        assert response["WWW-Authenticate"] == "Token"
        assert response.json()["error"]["code"] == "not_authenticated"
    elif expected == 403:
        assert response.json()["error"]["code"] == "forbidden"
    elif expected == 404:
        assert response.json()["error"]["code"] == "not_found"
        assert b"Matrix project" not in content


def test_outsider_sees_no_other_projects_jobs_in_lists(api, db, world):
    client = api(world["users"]["outsider"])
    assert client.get("/api/v1/jobs/").json()["count"] == 0
    assert [p["slug"] for p in client.get("/api/v1/projects/").json()["results"]] == [
        "outsider-project"
    ]
    slug = Project.objects.get(pk=world["project"]).slug
    assert client.get(f"/api/v1/jobs/?project={slug}").status_code == 404


def test_image_file_route_answers_members_only(api, db, world):
    url = f"/files/images/{world['ids']['image']}/thumb"
    for role in MEMBERS:
        assert api(world["users"][role]).get(url).status_code == 200, role
    assert api(world["users"]["outsider"]).get(url).status_code == 404
    assert api().get(url).status_code == 401


def test_queues_listed_to_the_annotator_are_still_the_projects(api, db, world):
    names = {q["name"] for q in api(world["users"]["annotator"]).get(
        f"{world['ids']['p']}/queues/").json()["results"]}  # fmt: skip
    assert names == {"Tasks", "Free", "Consensus"}
    assert AnnotationQueue.objects.count() == 3
