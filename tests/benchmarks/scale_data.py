"""Build a project of N images on PostgreSQL fast, for the page-scale benchmark.

Run inside Django (``manage.py shell -c``) against the benchmark's own database. Users,
the project, the dataset, the label class and the queue are made through the services;
the bulk rows (images, working set, versions and their items, quality metrics,
near-duplicate groups, queue items, submitted annotations, jobs) are written with
``INSERT ... SELECT generate_series`` so a million images take minutes, not hours.
Files are not written: every image points at one shared path, and no measured page
opens an image file.
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.contrib.auth.models import update_last_login
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from annotation.models import AnnotationQueue, EmbeddingSpace, LabelClass, QueueItem
from annotation.services.quality_histograms import quality_histograms_compute
from studio.models import Dataset, DatasetVersion, Membership, Project
from studio.services.datasets import dataset_create
from studio.services.projects import project_create

ANNOTATORS = 30  # each "next task" request is a different annotator's first
VERSIONS = 3
MARKER = "bench-scale complete"


def _sql(statement: str, **params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _user(name: str):
    user, created = get_user_model().objects.get_or_create(username=name)
    if created:
        user.set_unusable_password()
        user.save()
    return user


def _generate(n: int) -> None:
    lead = _user("bench-lead")
    annotators = [_user(f"bench-a{i:02d}") for i in range(ANNOTATORS)]
    project = project_create(owner=lead, name=f"Scale {n}")
    Membership.objects.bulk_create(
        [Membership(project=project, user=u, role="annotator") for u in annotators]
    )
    project.metadata_fields = ["camera", "lighting"]
    project.save(update_fields=["metadata_fields"])
    dataset = dataset_create(actor=lead, project=project, name="images")
    p, d, u = project.pk, dataset.pk, lead.pk
    _sql(
        """
        INSERT INTO studio_image (project_id, sha256, file, thumbnail, original_name, format,
            width, height, byte_size, metadata, uploaded_by_id, created_at)
        SELECT %(p)s, encode(sha256(convert_to('bench-' || %(p)s || '-' || g, 'UTF8')), 'hex'),
            'bench/shared.jpg', 'bench/shared-thumb.jpg', 'img_' || lpad(g::text, 7, '0') || '.jpg',
            'JPEG', 640, 480, 40000 + g %% 9973,
            jsonb_build_object('camera', 'cam' || (g %% 20),
                               'lighting', (ARRAY['day', 'night', 'dusk'])[1 + g %% 3]),
            %(u)s, now()
        FROM generate_series(1, %(n)s) AS g
        """,
        p=p,
        u=u,
        n=n,
    )
    _sql(
        "INSERT INTO studio_datasetimage (dataset_id, image_id, added_at) "
        "SELECT %(d)s, id, now() FROM studio_image WHERE project_id = %(p)s",
        d=d,
        p=p,
    )
    # Versions: v1 holds the first 90 %, the later ones every image.
    first = int(n * 0.9)
    version_ids = []
    for number in range(1, VERSIONS + 1):
        count = first if number == 1 else n
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO studio_datasetversion (dataset_id, number, manifest_hash, image_count,"
                " note, created_by_id, created_at) VALUES (%s, %s, %s, %s, '', %s, now()) "
                "RETURNING id",
                [d, number, f"bench-{n}-{number}", count, u],
            )
            version_ids.append(cursor.fetchone()[0])
        # split_for() in SQL: the first 8 hex digits of the hash, mod 100.
        _sql(
            """
            INSERT INTO studio_datasetversionitem (version_id, image_id, split)
            SELECT %(v)s, id, CASE WHEN bucket < 80 THEN 'train' WHEN bucket < 90 THEN 'val'
                                   ELSE 'test' END
            FROM (SELECT id, ('x' || substr(sha256, 1, 8))::bit(32)::bigint %% 100 AS bucket
                  FROM studio_image WHERE project_id = %(p)s ORDER BY id LIMIT %(c)s) AS first
            """,
            v=version_ids[-1],
            p=p,
            c=count,
        )
    latest = version_ids[-1]
    _sql(
        """
        INSERT INTO annotation_imagequality (image_id, brightness, contrast, sharpness,
            colourfulness, aspect_ratio, megapixels, updated_at)
        SELECT id, (id * 37) %% 255, (id * 11) %% 80, (id * 101) %% 2000, (id * 7) %% 120,
            1.3333, 0.3072, now()
        FROM studio_image WHERE project_id = %(p)s
        """,
        p=p,
    )
    for version in DatasetVersion.objects.filter(pk__in=version_ids):  # as analysis does
        quality_histograms_compute(version=version)
    # Near-duplicates in the latest version: groups of three (one kept), and one large
    # group (a burst of near-identical frames) that a page must not render whole.
    space = EmbeddingSpace.objects.create(
        project=project, backbone="bench", weights="0" * 64, dim=8
    )
    groups, big = max(1, n // 300), min(max(n // 50, 10), 2000)
    _sql(
        "INSERT INTO annotation_duplicategroup (version_id, space_id, threshold, created_at) "
        "SELECT %(v)s, %(s)s, 0.9, now() FROM generate_series(0, %(g)s)",
        v=latest,
        s=space.pk,
        g=groups,
    )
    _sql(
        """
        WITH imgs AS (
            SELECT id, rn, CASE WHEN rn < 3 * %(g)s THEN rn / 3
                                WHEN rn < 3 * %(g)s + %(b)s THEN %(g)s END AS gn
            FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS rn
                  FROM studio_image WHERE project_id = %(p)s) AS numbered),
             grp AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS gn
                     FROM annotation_duplicategroup WHERE version_id = %(v)s)
        INSERT INTO annotation_duplicatemember (group_id, image_id, keep, similarity, chosen)
        SELECT grp.id, imgs.id,
            CASE WHEN imgs.gn < %(g)s THEN imgs.rn %% 3 = 0 ELSE imgs.rn = 3 * %(g)s END,
            0.95, false
        FROM imgs JOIN grp ON grp.gn = imgs.gn
        """,
        p=p,
        v=latest,
        g=groups,
        b=big,
    )
    # One queue over the latest version; 5 % done, 1 % submitted and waiting for review.
    box = LabelClass.objects.create(project=project, name="object", kind="box")
    queue = AnnotationQueue.objects.create(
        project=project,
        name="Boxes",
        version=DatasetVersion.objects.get(pk=latest),
        created_by=lead,
    )
    queue.label_classes.set([box])
    _sql(
        """
        INSERT INTO annotation_queueitem (queue_id, image_id, position, status, replica,
            assignee_id)
        SELECT %(q)s, image_id, (row_number() OVER (ORDER BY image_id)) - 1,
            CASE WHEN image_id %% 100 < 5 THEN 'done' WHEN image_id %% 100 = 5 THEN 'submitted'
                 ELSE 'todo' END,
            0, CASE WHEN image_id %% 100 <= 5 THEN %(a)s END
        FROM studio_datasetversionitem WHERE version_id = %(v)s
        """,
        q=queue.pk,
        v=latest,
        a=annotators[0].pk,
    )
    _sql(
        """
        INSERT INTO annotation_annotation (image_id, label_class_id, kind, geometry, area, bbox,
            attributes, source, source_detail, is_crowd, status, author_id, version, deleted,
            created_at, updated_at)
        SELECT image_id, %(c)s, 'box', '[10, 10, 50, 40]', 2000, '[10, 10, 50, 40]', '{}',
            'human', '', false,
            CASE WHEN status = 'done' THEN 'accepted' ELSE 'submitted' END,
            %(a)s, 1, false, now(), now()
        FROM annotation_queueitem WHERE queue_id = %(q)s AND status IN ('done', 'submitted')
        """,
        c=box.pk,
        q=queue.pk,
        a=annotators[0].pk,
    )
    _sql(
        """
        INSERT INTO studio_job (project_id, kind, status, progress, message, error, params,
            result, checkpoint, attempts, max_attempts, cancel_requested, created_by_id,
            created_at, finished_at)
        SELECT %(p)s, 'ingest', 'succeeded', 100, '', '', jsonb_build_object('dataset', %(d)s),
            '{}', '{}', 1, 3, false, %(u)s, now() - g * interval '1 hour', now()
        FROM generate_series(1, 40) AS g
        """,
        p=p,
        d=d,
        u=u,
    )
    project.business_problem = MARKER
    project.save(update_fields=["business_problem"])


def _session(user) -> str:
    """Return a signed-in session key for the user (no password round trip)."""
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    update_last_login(None, user)
    return session.session_key


def prepare(n: int) -> None:
    """Generate the data unless a complete set of this size is there; print what to request."""
    project = Project.objects.filter(name=f"Scale {n}").first()
    if project is None or project.business_problem != MARKER:
        if project is not None:
            raise SystemExit("A half-built benchmark project is in the way: drop the database.")
        with transaction.atomic():
            _generate(n)
        with connection.cursor() as cursor:  # settled tables: statistics and visibility map
            cursor.execute("VACUUM ANALYZE")
        project = Project.objects.get(name=f"Scale {n}")
    dataset = Dataset.objects.get(project=project)
    queue = AnnotationQueue.objects.get(project=project)
    # Hand back the leases a previous run's "next task" requests took, so each run's
    # requests are first requests again.
    QueueItem.objects.filter(queue=queue, status="in_progress").update(
        status="todo", assignee=None, lease_expires_at=None, leased_at=None
    )
    lead = get_user_model().objects.get(username="bench-lead")
    annotators = (
        get_user_model().objects.filter(username__startswith="bench-a").order_by("username")
    )
    print(
        json.dumps(
            {
                "slug": project.slug,
                "dataset": dataset.pk,
                "queue": queue.pk,
                "version": dataset.versions.order_by("-number").first().number,
                "session": _session(lead),
                "token": Token.objects.get_or_create(user=lead)[0].key,
                "annotator_tokens": [
                    Token.objects.get_or_create(user=a)[0].key for a in annotators
                ],
            }
        )
    )
