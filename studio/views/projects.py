"""Project pages: the list, creating and editing a project, its objectives, its problem
statement and its members."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studio import selectors
from studio.errors import ApplicationError
from studio.forms import (
    ApproachFormSet,
    CriterionFormSet,
    MemberForm,
    ObjectiveForm,
    ProblemForm,
    ProjectForm,
    RoleForm,
)
from studio.services import projects as project_services
from studio.views.base import form_error, member_view, require_allowed


@require_GET
@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = selectors.project_list(user=request.user)
    return render(request, "studio/project_list.html", {"projects": projects})


@require_http_methods(["GET", "POST"])
@login_required
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = project_services.project_create(owner=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Project “{project.name}” created. Add its objectives next.")
            return redirect("studio:project_detail", slug=project.slug)
    return render(request, "studio/project_form.html", {"form": form})


@require_GET
@member_view
def project_detail(request: HttpRequest, project) -> HttpResponse:
    user = request.user
    jobs = list(selectors.job_list(user=user, project=project)[:8])
    context = {
        "project": project,
        "jobs": jobs,
        "jobs_active": any(j.is_active for j in jobs),
        "objectives": selectors.objective_list(user=user, project=project),
        "problem": selectors.problem_statement_get(user=user, project=project),
        "datasets": selectors.dataset_list(user=user, project=project),
        "members": selectors.member_list(user=user, project=project),
    }
    template = "studio/project_detail.html"
    if request.htmx and request.GET.get("fragment") == "jobs":
        template += "#jobs"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@member_view
def project_edit(request: HttpRequest, project) -> HttpResponse:
    require_allowed(request.can_manage, "the project's leads")
    form = ProjectForm(
        request.POST or None,
        initial={"name": project.name, "business_problem": project.business_problem},
    )
    if request.method == "POST" and form.is_valid():
        try:
            project_services.project_update(
                actor=request.user, project=project, **form.cleaned_data
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            return redirect("studio:project_detail", slug=project.slug)
    return render(request, "studio/project_form.html", {"form": form, "project": project})


@require_http_methods(["GET", "POST"])
@member_view
def objective_edit(request: HttpRequest, project, objective_id: int | None = None) -> HttpResponse:
    require_allowed(request.can_manage, "the project's leads")
    objective = (
        selectors.objective_get(user=request.user, project=project, objective_id=objective_id)
        if objective_id
        else None
    )
    members = project.members.all()
    form = ObjectiveForm(request.POST or None, instance=objective, members=members)
    if request.method == "POST" and form.is_valid():
        data = {f: form.cleaned_data[f] for f in form.Meta.fields}
        try:
            if objective:
                project_services.objective_update(actor=request.user, objective=objective, **data)
            else:
                project_services.objective_create(actor=request.user, project=project, **data)
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, "Objective saved.")
            return redirect("studio:project_detail", slug=project.slug)
    return render(
        request,
        "studio/objective_form.html",
        {"form": form, "project": project, "objective": objective},
    )


@require_http_methods(["GET", "POST"])
@member_view
def problem_edit(request: HttpRequest, project) -> HttpResponse:
    require_allowed(request.can_manage, "the project's leads")
    problem = selectors.problem_statement_get(user=request.user, project=project)
    initial = {}
    approaches_initial, criteria_initial = [], []
    if problem:
        initial = {
            f: getattr(problem, f)
            for f in (
                "task_type",
                "description",
                "serving_mode",
                "latency_budget_ms",
                "model_size_budget_mb",
            )
        }
        approaches_initial = [
            {"name": a.name, "notes": a.notes, "priority": a.priority, "status": a.status}
            for a in problem.approaches.all()
        ]
        criteria_initial = [
            {
                "metric": c.metric,
                "comparison": c.comparison,
                "threshold": c.threshold,
                "slice": c.slice,
            }
            for c in problem.criteria.all()
        ]
    data = request.POST or None
    form = ProblemForm(data, initial=initial)
    approaches = ApproachFormSet(data, initial=approaches_initial, prefix="approaches")
    criteria = CriterionFormSet(data, initial=criteria_initial, prefix="criteria")
    if (
        request.method == "POST"
        and form.is_valid()
        and approaches.is_valid()
        and criteria.is_valid()
    ):

        def rows(formset):
            # Every filled row is kept, edited or not; blank extra rows and deleted ones are not.
            return [
                {k: v for k, v in f.cleaned_data.items() if k != "DELETE"}
                for f in formset.forms
                if f.cleaned_data and not f.cleaned_data.get("DELETE")
            ]

        try:
            project_services.problem_statement_set(
                actor=request.user,
                project=project,
                approaches=rows(approaches),
                criteria=rows(criteria),
                **form.cleaned_data,
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, "Problem statement saved.")
            return redirect("studio:project_detail", slug=project.slug)
    return render(
        request,
        "studio/problem_form.html",
        {"form": form, "approaches": approaches, "criteria": criteria, "project": project},
    )


@require_http_methods(["GET", "POST"])
@member_view
def members(request: HttpRequest, project) -> HttpResponse:
    form = MemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project_services.member_add(actor=request.user, project=project, **form.cleaned_data)
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"{form.cleaned_data['username']} added.")
            return redirect("studio:members", slug=project.slug)
    return render(
        request,
        "studio/members.html",
        {
            "project": project,
            "form": form,
            "role_form": RoleForm(),
            "members": selectors.member_list(user=request.user, project=project),
        },
    )


@require_POST
@member_view
def member_change(request: HttpRequest, project, membership_id: int) -> HttpResponse:
    require_allowed(request.can_manage, "the project's leads")
    membership = selectors.member_get(
        user=request.user, project=project, membership_id=membership_id
    )
    try:
        if request.POST.get("action") == "remove":
            if request.POST.get("confirm") != "1":
                from studio.views.confirm import confirm_member_remove

                return confirm_member_remove(request, project, membership)
            project_services.member_remove(actor=request.user, membership=membership)
            messages.success(request, f"{membership.user.username} removed.")
        else:
            form = RoleForm(request.POST)
            if not form.is_valid():
                raise ApplicationError("Choose a valid role.")
            project_services.member_update_role(
                actor=request.user, membership=membership, **form.cleaned_data
            )
            messages.success(request, f"{membership.user.username} is now {membership.role}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("studio:members", slug=project.slug)
