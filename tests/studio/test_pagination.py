"""Pages whose work does not grow with the dataset: seek pages, capped counts, stored sizes.

No timing here (that is tests/benchmarks/test_page_scale.py): these prove the shape. The
same page asks the same number of queries at 5 images and at 60, no grid page counts the
whole image table, a count stops at the cap, and the stored sizes stay true.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from studio import pagination
from studio.models import Dataset, DatasetImage, Image
from studio.pagination import Total, capped_count, seek_page
from studio.services.datasets import (
    dataset_add_images,
    dataset_version_restore,
    dataset_working_set_replace,
)
from tests.factories import add_images, make_dataset, make_project


@pytest.fixture
def two_sizes(team):
    """Two projects of the lead's, one dataset each: 5 images and 60 images."""
    lead = team["lead"]
    sizes = {}
    for n in (5, 60):
        project = make_project(lead, f"Size {n}")
        project.metadata_fields = ["camera", "n", "night"]
        project.save(update_fields=["metadata_fields"])
        dataset = make_dataset(project, lead)
        add_images(project, dataset, lead, n)
        sizes[n] = (project, dataset)
    return sizes


def queries(client, url: str) -> list[str]:
    client.get(url)  # warm: session, caches
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return [q["sql"] for q in ctx.captured_queries]


def whole_table_counts(sql: list[str]) -> list[str]:
    """COUNT queries over the image table that read every matching row (no LIMIT inside)."""
    return [q for q in sql if "COUNT(" in q and '"studio_image"' in q and "LIMIT" not in q]


GRID_URLS = [
    "/p/{slug}/datasets/{d}/",
    "/p/{slug}/datasets/{d}/?version=1",
    "/p/{slug}/datasets/{d}/?version=1&split=train",
    "/p/{slug}/datasets/{d}/?version=1&meta.camera=cam1",
    "/api/v1/projects/{slug}/images/",
    "/api/v1/projects/{slug}/images/?dataset={d}&version=1",
    "/api/v1/projects/{slug}/images/?meta.camera=cam1",
    "/api/v1/projects/{slug}/datasets/",
    "/api/v1/projects/{slug}/datasets/{d}/",
    "/p/{slug}/",
]


@pytest.mark.parametrize("url", GRID_URLS)
def test_grid_pages_ask_as_many_queries_at_60_images_as_at_5_and_never_count_them_all(
    client, team, two_sizes, url
):
    client.force_login(team["lead"])
    sql = {}
    for n, (project, dataset) in two_sizes.items():
        sql[n] = queries(client, url.format(slug=project.slug, d=dataset.pk))
    assert len(sql[5]) == len(sql[60])
    assert whole_table_counts(sql[60]) == []


def test_the_dataset_selector_reads_stored_sizes_not_a_join_of_members_and_versions(
    client, team, two_sizes
):
    project, dataset = two_sizes[60]
    client.force_login(team["lead"])
    sql = queries(client, f"/api/v1/projects/{project.slug}/datasets/")
    assert not [q for q in sql if "studio_datasetimage" in q or "GROUP BY" in q]
    body = client.get(f"/api/v1/projects/{project.slug}/datasets/{dataset.pk}/").json()
    assert body["image_count"] == 60 and body["latest_version"] == 1


def test_image_count_follows_every_change_of_the_working_set(team):
    lead = team["lead"]
    project = make_project(lead, "Counts")
    dataset = make_dataset(project, lead)
    ids = add_images(project, dataset, lead, 10)

    def stored() -> int:
        return Dataset.objects.get(pk=dataset.pk).image_count

    assert stored() == 10 == DatasetImage.objects.filter(dataset=dataset).count()
    assert dataset_add_images(dataset=dataset, image_ids=ids[:4] + ids[:2]) == 0  # all known
    assert stored() == 10
    dataset_working_set_replace(actor=lead, dataset=dataset, image_ids=ids[:3], note="keep 3")
    assert stored() == 3 == DatasetImage.objects.filter(dataset=dataset).count()
    dataset_version_restore(actor=lead, version=dataset.versions.get(number=1), confirm=True)
    assert stored() == 10 == DatasetImage.objects.filter(dataset=dataset).count()


def test_the_migration_fills_image_count_from_the_members(team):
    from importlib import import_module

    lead = team["lead"]
    project = make_project(lead, "Backfill")
    dataset = make_dataset(project, lead)
    add_images(project, dataset, lead, 7)
    empty = make_dataset(project, lead, "Empty")
    Dataset.objects.update(image_count=99)
    import_module("studio.migrations.0005_dataset_image_count").count_working_sets(apps, None)
    assert Dataset.objects.get(pk=dataset.pk).image_count == 7
    assert Dataset.objects.get(pk=empty.pk).image_count == 0


def test_seek_pages_walk_forward_and_back_and_offsets_still_work(team):
    lead = team["lead"]
    project = make_project(lead, "Seek")
    dataset = make_dataset(project, lead)
    ids = add_images(project, dataset, lead, 7)
    images = Image.objects.filter(project=project)
    first = seek_page(images, size=3)
    assert first.keys == ids[:3] and first.before is None and first.after == ids[2]
    assert first.total == Total(7) and str(first.total) == "7"
    second = seek_page(images, size=3, after=first.after)
    assert second.keys == ids[3:6] and second.before == ids[3] and second.after == ids[5]
    last = seek_page(images, size=3, after=second.after)
    assert last.keys == ids[6:] and last.after is None
    back = seek_page(images, size=3, before=second.before)
    assert back.keys == ids[:3] and back.before is None and back.after == ids[2]
    assert seek_page(images, size=3, offset=3).keys == ids[3:6]


def test_a_count_stops_at_the_cap_and_says_so(team, monkeypatch):
    lead = team["lead"]
    project = make_project(lead, "Cap")
    dataset = make_dataset(project, lead)
    add_images(project, dataset, lead, 5)
    images = Image.objects.filter(project=project)
    assert capped_count(images, cap=5) == Total(5, exact=True)
    assert capped_count(images, cap=4) == Total(4, exact=False)
    assert str(capped_count(images, cap=4)) == "4+"
    with CaptureQueriesContext(connection) as ctx:
        capped_count(images, cap=2)
    assert "LIMIT 3" in ctx.captured_queries[0]["sql"]
    monkeypatch.setattr(pagination, "COUNT_CAP", 3)
    assert capped_count(images) == Total(3, exact=False)


def test_grid_says_more_than_the_cap_and_its_links_seek(client, team, two_sizes, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_CAP", 20)
    project, dataset = two_sizes[60]
    client.force_login(team["lead"])
    base = f"/p/{project.slug}/datasets/{dataset.pk}/"
    page = client.get(f"{base}?version=1&meta.camera=cam1").content.decode()
    assert "20+ images in v1" in page and "Act on these 20+ images" in page
    page = client.get(f"{base}?version=1").content.decode()
    assert "60 images in v1" in page  # a whole version: its stored size, exact
    ids = list(Image.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    assert f'rel="next" href="?version=1&after={ids[47]}"' in page
    second = client.get(f"{base}?version=1&after={ids[47]}").content.decode()
    assert f"img{59:05d}.jpg" in second and f"img{47:05d}.jpg" not in second
    assert f'rel="prev" href="?version=1&before={ids[48]}"' in second
    assert 'rel="next"' not in second


def test_the_image_api_keeps_its_page_shape_and_adds_count_exact(api, team, two_sizes, monkeypatch):
    project, dataset = two_sizes[60]
    c = api(team["lead"])
    base = f"/api/v1/projects/{project.slug}/images/"
    ids = list(Image.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    first = c.get(base).json()
    assert first["count"] == 60 and first["count_exact"] is True  # counted: 60 < the cap
    assert [r["id"] for r in first["results"]] == ids[:50] and first["previous"] is None
    assert first["next"].endswith(f"?after={ids[49]}")
    second = c.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == ids[50:] and second["next"] is None
    assert second["previous"].endswith(f"?before={ids[50]}")
    assert [r["id"] for r in c.get(second["previous"]).json()["results"]] == ids[:50]
    assert [r["id"] for r in c.get(f"{base}?page=2").json()["results"]] == ids[50:]
    assert c.get(f"{base}?page=3").status_code == 404
    assert c.get(f"{base}?page=2&after={ids[3]}").status_code == 400
    assert c.get(f"{base}?after=0").status_code == 400
    assert c.get(f"{base}?after={2**64}").status_code == 400
    version = c.get(f"{base}?dataset={dataset.pk}&version=1").json()
    assert version["count"] == 60 and version["count_exact"] is True
    monkeypatch.setattr(pagination, "COUNT_CAP", 10)
    capped = c.get(f"{base}?meta.camera=cam1").json()
    assert capped["count"] == 10 and capped["count_exact"] is False
    assert len(capped["results"]) == 30  # the page itself is whole


def test_metadata_filters_match_text_numbers_and_booleans(api, team, two_sizes):
    project, _ = two_sizes[60]
    c = api(team["lead"])
    base = f"/api/v1/projects/{project.slug}/images/"
    assert c.get(f"{base}?meta.camera=cam1").json()["count"] == 30
    assert c.get(f"{base}?meta.n=2").json()["count"] == 20  # a JSON number
    assert c.get(f"{base}?meta.night=true").json()["count"] == 30  # a JSON boolean
    assert c.get(f"{base}?meta.camera=cam9").json()["count"] == 0


def test_metadata_filters_ask_what_the_gin_index_answers_on_postgresql(team, two_sizes):
    from studio import selectors

    project, _ = two_sizes[5]
    images = selectors.image_list(user=team["lead"], project=project, metadata={"camera": "x"})
    sql = str(images.query)
    if connection.vendor == "postgresql":
        assert "@>" in sql  # containment: the jsonb_path_ops index's operator
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'studio_image_metadata_gin'"
            )
            assert "gin (metadata jsonb_path_ops)" in cursor.fetchone()[0]
    else:
        assert "@>" not in sql  # SQLite has no containment: key equality
