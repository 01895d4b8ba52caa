"""Projects, members, objectives and the problem statement (studio/services/projects.py)."""

from __future__ import annotations

import pytest

from studio import selectors
from studio.errors import ApplicationError, Conflict, Forbidden, InvalidValues, NotFound
from studio.models import Membership
from studio.services import projects as svc
from tests.factories import make_user


def test_creator_becomes_lead_and_slugs_stay_unique(lead):
    a = svc.project_create(owner=lead, name="Street scenes")
    b = svc.project_create(owner=lead, name="Street scenes")
    assert (a.slug, b.slug) == ("street-scenes", "street-scenes-2")
    assert Membership.objects.get(project=a, user=lead).role == "lead"
    with pytest.raises(Conflict):
        svc.project_create(owner=lead, name="x", slug="street-scenes")
    with pytest.raises(ApplicationError):
        svc.project_create(owner=lead, name="  ")


def test_project_list_is_scoped_and_carries_my_role(team):
    assert [(p.name, p.my_role) for p in selectors.project_list(user=team["viewer"])] == [
        ("Team project", "viewer")
    ]
    with pytest.raises(NotFound):
        selectors.project_get(user=team["outsider"], slug=team["project"].slug)


def test_only_a_lead_manages_members_and_nobody_changes_their_own_role(team):
    project = team["project"]
    newbie = make_user("newbie")
    with pytest.raises(Forbidden):
        svc.member_add(actor=team["reviewer"], project=project, username="newbie", role="viewer")
    m = svc.member_add(actor=team["lead"], project=project, username="newbie", role="annotator")
    with pytest.raises(Conflict):
        svc.member_add(actor=team["lead"], project=project, username="newbie", role="viewer")
    with pytest.raises(NotFound):
        svc.member_add(actor=team["lead"], project=project, username="ghost", role="viewer")
    svc.member_update_role(actor=team["lead"], membership=m, role="reviewer")
    assert Membership.objects.get(pk=m.pk).role == "reviewer"
    lead_m = Membership.objects.get(project=project, user=team["lead"])
    with pytest.raises(Forbidden, match="own role"):
        svc.member_update_role(actor=team["lead"], membership=lead_m, role="viewer")
    newbie_lead = Membership.objects.get(pk=m.pk)
    svc.member_update_role(actor=team["lead"], membership=newbie_lead, role="lead")
    with pytest.raises(Forbidden, match="own role"):
        svc.member_update_role(
            actor=newbie, membership=Membership.objects.get(pk=m.pk), role="viewer"
        )


def test_a_project_keeps_at_least_one_lead(team):
    second = make_user("second")
    m = svc.member_add(actor=team["lead"], project=team["project"], username="second", role="lead")
    lead_m = Membership.objects.get(project=team["project"], user=team["lead"])
    svc.member_remove(actor=second, membership=lead_m)
    with pytest.raises(Forbidden, match="remove yourself"):
        svc.member_remove(actor=second, membership=Membership.objects.get(pk=m.pk))


def test_objectives_need_a_member_owner(team):
    project = team["project"]
    o = svc.objective_create(
        actor=team["lead"],
        project=project,
        title="Faster review",
        kpi="min/image",
        target_value=1.0,
        unit="min",
        direction="lower",
        owner=team["reviewer"],
    )
    assert o.status == "on_track"
    with pytest.raises(ApplicationError, match="member"):
        svc.objective_update(actor=team["lead"], objective=o, owner=team["outsider"])
    with pytest.raises(Forbidden):
        svc.objective_update(actor=team["reviewer"], objective=o, status="met")
    svc.objective_update(actor=team["lead"], objective=o, status="met")
    o.refresh_from_db()
    assert o.status == "met"


def test_problem_statement_keeps_criteria_as_data(team):
    problem = svc.problem_statement_set(
        actor=team["lead"],
        project=team["project"],
        task_type="detection",
        latency_budget_ms=50,
        criteria=[
            {"metric": "AP50", "threshold": 0.8, "comparison": "gte", "slice": ""},
            {"metric": "AP50", "threshold": 0.7, "comparison": "gte", "slice": "lighting=dark"},
        ],
        approaches=[{"name": "YOLO", "priority": 1, "status": "chosen"}],
    )
    rows = {(c.metric, c.slice): c for c in problem.criteria.all()}
    assert rows[("AP50", "lighting=dark")].is_met(0.71) and not rows[("AP50", "")].is_met(0.79)
    # Replacing the statement without criteria keeps them; with a list replaces them.
    svc.problem_statement_set(actor=team["lead"], project=team["project"], task_type="detection")
    assert problem.criteria.count() == 2
    with pytest.raises(ApplicationError, match="twice"):
        svc.problem_statement_set(
            actor=team["lead"],
            project=team["project"],
            task_type="detection",
            criteria=[{"metric": "AP", "threshold": 1, "comparison": "gte"}] * 2,
        )
    with pytest.raises(ApplicationError, match="field=value"):
        svc.criterion_add(
            actor=team["lead"], project=team["project"], metric="AP", threshold=0.5, slice="dark"
        )
    # A value the model refuses is an ApplicationError naming the field, not Django's error.
    with pytest.raises(InvalidValues) as refused:
        svc.problem_statement_set(
            actor=team["lead"], project=team["project"], task_type="telepathy"
        )
    assert list(refused.value.details) == ["task_type"] and refused.value.code == "invalid"


def test_project_list_has_one_row_per_project_whatever_the_team_size(team):
    svc.project_create(owner=team["lead"], name="Solo")
    rows = [(p.name, p.my_role) for p in selectors.project_list(user=team["lead"])]
    assert rows == [("Solo", "lead"), ("Team project", "lead")]
