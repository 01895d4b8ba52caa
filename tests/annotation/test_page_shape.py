"""Curation and review pages whose work does not grow with the dataset (shape, not timing).

The duplicates page shows a page of groups and a few copies of each with "+N more" and
still counts every copy for the drop button; the curate page draws histograms from the
bins its analysis stored; the review list asks the same queries at 3 waiting images as
at 30. Timing is in tests/benchmarks/test_page_scale.py.
"""

from __future__ import annotations

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import (
    DuplicateGroup,
    DuplicateMember,
    EmbeddingSpace,
    ImageQuality,
    QualityHistograms,
)
from annotation.services.labels import annotation_create, label_class_create
from annotation.services.quality_histograms import bin_values, quality_histograms_compute
from annotation.views.curation import GROUP_MEMBERS, GROUPS_PAGE
from tests.factories import add_images, make_dataset, make_project


def _project(team, name: str, n: int):
    lead = team["lead"]
    project = make_project(lead, name, annotator=team["annotator"])
    dataset = make_dataset(project, lead)
    ids = add_images(project, dataset, lead, n)
    return project, dataset, dataset.versions.get(number=1), ids


def _groups(version, ids: list[int], sizes: list[int]) -> list[DuplicateGroup]:
    """Near-duplicate groups of the given sizes over ``ids`` in order; the first copy kept."""
    space = EmbeddingSpace.objects.create(
        project=version.dataset.project, backbone="test", weights="0" * 64, dim=4
    )
    groups, at = [], 0
    for size in sizes:
        group = DuplicateGroup.objects.create(version=version, space=space, threshold=0.9)
        DuplicateMember.objects.bulk_create(
            DuplicateMember(group=group, image_id=ids[at + k], keep=k == 0,
                            similarity=1.0 if k == 0 else 0.99 - k / 1000)
            for k in range(size)
        )  # fmt: skip
        groups.append(group)
        at += size
    return groups


def _sql(client, url: str) -> list[str]:
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def test_duplicates_page_shows_a_few_copies_per_group_and_counts_them_all(client, team):
    project, dataset, version, ids = _project(team, "Dups", 60)
    big, small = _groups(version, ids, [30, 3])
    client.force_login(team["lead"])
    url = f"/p/{project.slug}/datasets/{dataset.pk}/duplicates/?version=1"
    page = client.get(url).content.decode()
    cards = page.split('<div class="dup-group">')[1:]
    shown = re.findall(r'alt="(img\d+\.jpg)"', cards[0])
    assert len(shown) == GROUP_MEMBERS and shown[0] == "img00000.jpg"  # kept copy first
    assert len(re.findall(r'alt="(img\d+\.jpg)"', cards[1])) == 3
    assert f'group={big.pk}">+{30 - GROUP_MEMBERS} more</a>' in page
    assert f"group={small.pk}" not in page  # all three shown: nothing more
    assert "Drop 31 copies from 2 groups…" in page  # every copy not kept, shown or not
    opened = client.get(f"{url}&group={big.pk}").content.decode()
    assert all(f"img{i:05d}.jpg" in opened for i in range(30)) and "img00031.jpg" not in opened
    assert "Drop 31 copies from 2 groups…" in opened and "← All groups" in opened


def test_duplicates_page_pages_groups_with_the_same_queries_at_any_size(client, team):
    client.force_login(team["lead"])
    sql = {}
    for n_groups, size in ((2, 3), (GROUPS_PAGE + 5, 40)):
        project, dataset, version, ids = _project(team, f"Groups {n_groups}", n_groups * size)
        _groups(version, ids, [size] * n_groups)
        url = f"/p/{project.slug}/datasets/{dataset.pk}/duplicates/?version=1"
        sql[n_groups] = _sql(client, url)
    assert len(sql[2]) == len(sql[GROUPS_PAGE + 5])
    page = client.get(url).content.decode()
    assert page.count('class="dup-group"') == GROUPS_PAGE and 'rel="next"' in page
    after = page.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    rest = client.get(f"/p/{project.slug}/datasets/{dataset.pk}/duplicates/{after}")
    assert rest.content.decode().count('class="dup-group"') == 5


def test_duplicates_api_lists_at_most_100_members_with_the_group_size(api, team):
    project, dataset, version, ids = _project(team, "Dups API", 110)
    _groups(version, ids, [105, 2])
    body = (
        api(team["lead"])
        .get(f"/api/v1/projects/{project.slug}/datasets/{dataset.pk}/versions/1/duplicates/")
        .json()
    )
    assert body["count"] == 2 and body["count_exact"] is True
    big, small = body["results"]
    assert big["member_count"] == 105 and len(big["members"]) == 100
    assert big["members"][0]["keep"] is True and big["members"][0]["image"] == ids[0]
    assert small["member_count"] == 2 and len(small["members"]) == 2


def test_histograms_are_bins_stored_by_analysis(client, team):
    project, dataset, version, ids = _project(team, "Hist", 40)
    ImageQuality.objects.bulk_create(
        ImageQuality(image_id=pk, brightness=float(i), contrast=5.0, sharpness=float(i % 4),
                     colourfulness=1.0, aspect_ratio=1.33, megapixels=0.003)
        for i, pk in enumerate(ids)
    )  # fmt: skip
    bins = quality_histograms_compute(version=version).bins
    assert bins["brightness"]["start"] == 0 and sum(bins["brightness"]["counts"]) == 40
    assert bins["brightness"]["counts"][-1] >= 1  # the maximum falls in the last bin
    assert bins["contrast"]["counts"][0] == 40 and bins["contrast"]["width"] == 1.0  # one value
    assert "uniqueness" not in bins  # no embeddings, no score
    assert bin_values(ImageQuality.objects.none(), "brightness") is None
    client.force_login(team["lead"])
    page = client.get(f"/p/{project.slug}/datasets/{dataset.pk}/curate/").content.decode()
    assert "hist-brightness" in page and '"type": "bar"' in page
    assert "hist-uniqueness" not in page
    # The page reads the stored bins: changing the rows does not change it until analysis.
    ImageQuality.objects.filter(image_id__in=ids).update(brightness=1000.0)
    assert QualityHistograms.objects.get(version=version).bins == bins


def test_review_list_asks_the_same_queries_at_3_waiting_images_as_at_30(client, team):
    lead = team["lead"]
    client.force_login(lead)
    sql, pages = {}, {}
    for waiting in (3, 30):
        project, _, _, ids = _project(team, f"Review {waiting}", 40)
        box = label_class_create(actor=lead, project=project, name="car", kind="box")
        for pk in ids[:waiting]:
            annotation_create(
                actor=lead, image=project.images.get(pk=pk), label_class=box,
                geometry=[1, 1, 5, 5], status="submitted",
            )  # fmt: skip
        sql[waiting] = _sql(client, f"/p/{project.slug}/review/")
        pages[waiting] = client.get(f"/p/{project.slug}/review/").content.decode()
    assert len(sql[3]) == len(sql[30])
    assert "3 images waiting" in pages[3] and "30 images waiting" in pages[30]
    assert pages[3].count("1 to review") == 3 and pages[30].count("1 to review") == 24
    assert 'rel="next"' not in pages[3] and 'rel="next"' in pages[30]
