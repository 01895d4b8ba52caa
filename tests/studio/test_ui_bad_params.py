"""Pages given ids no database column holds, in their query string: never a 500."""

from __future__ import annotations

import pytest

HUGE = str(10**30)
PAGES = [
    "/p/{slug}/datasets/{dataset}/?cluster={huge}",
    "/p/{slug}/datasets/{dataset}/?version={huge}",
    "/p/{slug}/datasets/{dataset}/curate/?version={huge}",
    "/p/{slug}/datasets/{dataset}/outliers/?version={huge}",
    "/p/{slug}/datasets/{dataset}/duplicates/?version={huge}",
    "/p/{slug}/review/?queue={huge}",
    "/p/{slug}/queues/?queue={huge}",
]


@pytest.mark.parametrize("page", PAGES)
def test_a_huge_id_in_a_pages_query_is_not_a_server_error(client, team, dataset, page):
    client.force_login(team["lead"])
    url = page.format(slug=team["project"].slug, dataset=dataset.pk, huge=HUGE)
    r = client.get(url)
    assert r.status_code < 500, (url, r.status_code)
