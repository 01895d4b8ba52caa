"""Least privilege and confirmation for members (issue 9): a member added without a role is a
viewer (service, API and form); removing a member asks first and says what it affects."""

from __future__ import annotations

from studio.models import Membership, Role
from studio.services import projects as svc
from tests.factories import make_user


def test_a_member_added_without_a_role_is_a_viewer(api, client, team):
    project = team["project"]
    first, second, third = make_user("first"), make_user("second"), make_user("third")
    assert svc.member_add(actor=team["lead"], project=project, username="first").role == Role.VIEWER
    r = api(team["lead"]).post(
        f"/api/v1/projects/{project.slug}/members/", {"username": "second"}, format="json"
    )
    assert r.status_code == 201 and r.json()["role"] == "viewer"
    client.force_login(team["lead"])
    page = client.get(f"/p/{project.slug}/members/").content.decode()
    # The form's role starts at viewer, the least privileged, not at the first choice, lead.
    assert '<option value="viewer" selected>' in page
    client.post(f"/p/{project.slug}/members/", {"username": "third"})
    assert Membership.objects.get(project=project, user=third).role == Role.VIEWER
    assert {m.user_id: m.role for m in Membership.objects.filter(user__in=[first, second])} == {
        first.pk: "viewer",
        second.pk: "viewer",
    }


def test_removing_a_member_asks_first_and_says_what_it_affects(client, team):
    project = team["project"]
    client.force_login(team["lead"])
    member = Membership.objects.get(project=project, user=team["annotator"])
    url = f"/p/{project.slug}/members/{member.pk}/"
    page = client.post(url, {"action": "remove"}).content.decode()
    assert "Remove annotator (annotator) from the project?" in page
    assert "The 0 annotations annotator made stay" in page and 'name="confirm" value="1"' in page
    assert Membership.objects.filter(pk=member.pk).exists()  # asked, not removed
    r = client.post(url, {"action": "remove", "confirm": "1"}, follow=True)
    assert b"annotator removed" in r.content
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_only_a_lead_sees_what_removing_a_member_would_affect(client, team):
    """The confirmation names another member's work: it is for the people who may remove."""
    project = team["project"]
    member = Membership.objects.get(project=project, user=team["reviewer"])
    for role in ("reviewer", "annotator", "viewer"):
        client.force_login(team[role])
        r = client.post(f"/p/{project.slug}/members/{member.pk}/", {"action": "remove"})
        page = r.content.decode()
        assert r.status_code == 403, role
        assert "Only the project&#x27;s leads can do this" in page
        assert "from the project?" not in page and "annotations" not in page
    assert Membership.objects.filter(pk=member.pk).exists()
