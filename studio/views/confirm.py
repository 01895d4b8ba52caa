"""Confirmation steps for actions that remove or hide data: say what they do, then do it.

Each renders ``confirm.html``: the numbers, what is affected, and a form that posts the
same request again with ``confirm=1`` (no script). Restoring a version (the undo of every
action that makes a smaller version) lives here too.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from studio import selectors
from studio.errors import ApplicationError
from studio.services import datasets as dataset_services
from studio.views.base import member_view


def confirm_member_remove(request, project, membership) -> HttpResponse:
    """Say what removing a member affects before it is done."""
    name = membership.user.username
    work = selectors.member_work(user=request.user, project=project, member=membership.user)
    made, held = work.get("annotations", 0), work.get("held", 0)
    objectives = selectors.objective_list(user=request.user, project=project)
    owned = sum(1 for o in objectives if o.owner_id == membership.user_id)
    details = [
        f"{name} loses access to {project.name} at once (role now: {membership.role}).",
        f"The {made} annotation{'s' if made != 1 else ''} {name} made stay, credited to them.",
    ]
    if held:
        details.append(
            f"{held} image{'s' if held != 1 else ''} {name} holds in a queue "
            "go back to the queue when the lease runs out."
        )
    if owned:
        details.append(f"{name} still owns {owned} objective(s); give them a new owner.")
    return render(
        request,
        "confirm.html",
        {
            "project": project,
            "title": f"Remove {name} from {project.name}",
            "message": f"Remove {name} ({membership.role}) from the project?",
            "details": details,
            "action": request.path,
            "fields": [("action", "remove")],
            "button": f"Remove {name}",
            "danger": True,
            "cancel": reverse("studio:members", args=[project.slug]),
            "undo": "To undo, add them again with the role they need.",
        },
    )


@require_http_methods(["GET", "POST"])
@member_view
def version_restore(request: HttpRequest, project, dataset_id: int, number: int) -> HttpResponse:
    """Undo: show in numbers what restoring a version's images makes, then make it on confirm."""
    dataset = selectors.dataset_get(user=request.user, project=project, dataset_id=dataset_id)
    version = selectors.version_get(user=request.user, dataset=dataset, number=number)
    back = reverse("studio:dataset_detail", args=[project.slug, dataset.pk])
    confirm = request.method == "POST" and request.POST.get("confirm") == "1"
    try:
        result = dataset_services.dataset_version_restore(
            actor=request.user, version=version, confirm=confirm,
            expect=request.POST.get("expect", ""),
        )  # fmt: skip
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    if result["applied"]:
        if result["created"]:
            messages.success(
                request,
                f"Version {result['version']} made with the {result['images_after']} images of "
                f"version {number}.",
            )
        else:
            messages.info(request, result["message"])
        return redirect(f"{back}?version={result['version']}")
    blocked = result["unchanged"] or result["empty"]
    return render(
        request,
        "confirm.html",
        {
            "project": project,
            "title": f"Restore the images of version {number}",
            "message": result["message"],
            "details": [
                f"Version {number} ({version.created_at:%Y-%m-%d %H:%M}) holds "
                f"{version.image_count} images" + (f": {version.note}" if version.note else "."),
                "Versions are never changed or deleted: this adds one, and the versions "
                "after it stay as they are.",
            ],
            "action": request.path,
            "fields": [("expect", result["expect"])],
            "button": f"Make version {result['version_after']} ({result['images_after']} images)",
            "danger": result["removed"] > 0,
            "blocked": blocked,
            "cancel": back,
        },
    )
