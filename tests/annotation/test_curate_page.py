"""The Curate page while its jobs run, and as each role sees it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from studio.models import Job
from studio.services.jobs import job_run


def _curate(team, version) -> str:
    return f"/p/{team['project'].slug}/datasets/{version.dataset_id}/curate/?version=1"


def test_while_the_one_click_chain_runs_the_page_says_so_then_reloads(client, team, version):
    client.force_login(team["lead"])
    base = f"/p/{team['project'].slug}/datasets/{version.dataset_id}/curate/"
    r = client.post(
        base + "run/embed/", {"version": 1, "backbone": "efficientnet_lite0", "then": "all"}
    )
    embed = Job.objects.get(pk=int(r["Location"].split("/")[2]))

    html = client.get(_curate(team, version)).content.decode()
    assert (
        'id="running"' in html and f'href="/jobs/{embed.pk}/">Embed images #{embed.pk}</a>' in html
    )
    # No section asks for work that is already under way.
    assert "No map yet: embed this version" not in html and "Not clustered yet" not in html
    assert "The map is being computed" in html and "Clusters are being computed" in html

    fragment = client.get(_curate(team, version) + "&fragment=running", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and "HX-Refresh" not in fragment
    assert fragment.content.decode().lstrip().startswith('<div class="card" id="running"')

    job_run(job_id=embed.pk)
    embed.refresh_from_db()
    for follow_up in embed.result["follow_ups"]:
        job_run(job_id=follow_up)
    done = client.get(_curate(team, version) + "&fragment=running", HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true"
    with CaptureQueriesContext(connection) as captured:
        html = client.get(_curate(team, version)).content.decode()
    assert 'id="running"' not in html and 'id="map-figure"' in html
    assert "being computed" not in html
    # Eight histograms from the bins the analysis stored: one row, not every image's values.
    assert all(f'"hist-{m}"' in html for m in ("brightness", "megapixels", "outlier_score"))
    reads = [q["sql"] for q in captured.captured_queries]
    assert sum('FROM "annotation_qualityhistograms"' in q for q in reads) == 1
    assert not any('FROM "annotation_imagequality"' in q for q in reads)
    assert not any('FROM "annotation_versionimagescore"' in q for q in reads)


def test_with_nothing_running_the_empty_states_say_what_to_do(client, team, version):
    client.force_login(team["lead"])
    html = client.get(_curate(team, version)).content.decode()
    assert 'id="running"' not in html
    assert "No map yet: embed this version, then analyze it." in html
    assert "Not clustered yet." in html


@pytest.mark.parametrize(
    ("role", "acts"),
    [("lead", True), ("reviewer", True), ("annotator", False), ("viewer", False)],
)
def test_only_roles_that_can_act_are_offered_the_forms(client, team, version, role, acts):
    client.force_login(team[role])
    html = client.get(_curate(team, version)).content.decode()
    for form in ('curate/run/embed/"', 'curate/run/analyze/"', 'curate/run/cluster/"',
                 'id="apply-form"', 'id="checkpoint-card"'):  # fmt: skip
        assert (form in html) is acts, (role, form)
    assert ("Reviewers and leads compute embeddings" in html) is not acts
    assert " disabled>Embed</button>" not in html  # never a dead button
