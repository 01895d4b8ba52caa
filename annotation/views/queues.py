"""Queue pages: the list with each queue's progress, creating a queue, "next task", work
returned to the annotator, honeypots, and batch pre-annotation of a queue's images."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.models import LabelClass, QueueItem
from annotation.selectors import labels as label_selectors
from annotation.selectors import queues as queue_selectors
from annotation.services import quality_control
from annotation.services import queues as queue_services
from annotation.services.preannotation import sam_installed
from studio import selectors
from studio.converters import parse_id
from studio.errors import ApplicationError
from studio.models import DatasetVersion
from studio.permissions import GRANTS, Capability, can
from studio.views import form_error, member_view, require_allowed


class QueueForm(forms.Form):
    name = forms.CharField(max_length=200)
    version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.none(),
        label="Images",
        help_text="Every image of this dataset version becomes a task.",
    )
    assignees = forms.MultipleChoiceField(
        required=False, help_text="Nobody ticked: every annotator of the project may take tasks."
    )
    instructions = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    lease_minutes = forms.IntegerField(
        min_value=1,
        max_value=1440,
        initial=30,
        help_text="A task left longer than this goes back to the queue.",
    )
    annotators_per_image = forms.IntegerField(
        min_value=1,
        max_value=10,
        initial=1,
        label="Annotators per image",
        help_text="More than 1: each image goes to that many different people (consensus).",
    )
    label_classes = forms.ModelMultipleChoiceField(
        queryset=LabelClass.objects.none(),
        required=False,
        label="Classes",
        widget=forms.CheckboxSelectMultiple,
        help_text="Nothing ticked: every class. Ticked: its tasks offer and accept only these.",
    )

    def __init__(self, *args, project, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = selectors.project_version_list(user=user, project=project)
        self.fields["version"].label_from_instance = lambda v: (
            f"{v.dataset.name} — version {v.number} ({v.image_count} images)"
        )
        self.members = {  # viewers cannot annotate, so they are not offered
            m.user.username: m.user
            for m in selectors.member_list(user=user, project=project).filter(
                role__in=GRANTS[Capability.ANNOTATE]
            )
        }
        self.fields["assignees"].choices = [(name, name) for name in sorted(self.members)]
        self.fields["assignees"].widget = forms.CheckboxSelectMultiple(
            choices=self.fields["assignees"].choices
        )
        self.fields["label_classes"].queryset = label_selectors.label_class_list(
            user=user, project=project
        )
        self.fields["label_classes"].label_from_instance = lambda c: (
            f"{c.name} ({c.get_kind_display().lower()})"
        )


@require_http_methods(["GET", "POST"])
@member_view
def queue_list(request: HttpRequest, project) -> HttpResponse:
    """Queues with their progress; leads create them here, annotators start from here."""
    if request.method == "POST":
        require_allowed(request.can_manage, "the project's leads")
    form = QueueForm(request.POST or None, project=project, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            queue = queue_services.queue_create(
                actor=request.user, project=project, name=data["name"], version=data["version"],
                assignees=[form.members[name] for name in data["assignees"]],
                instructions=data["instructions"], lease_minutes=data["lease_minutes"],
                annotators_per_image=data["annotators_per_image"],
                label_classes=list(data["label_classes"]),
            )  # fmt: skip
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Queue {queue.name!r} holds {queue.items.count()} tasks.")
            return redirect("annotation:queue_list", slug=project.slug)
    queues = list(
        queue_selectors.queue_list(user=request.user, project=project).prefetch_related("assignees")
    )
    classes = list(label_selectors.label_class_list(user=request.user, project=project))
    by_status = queue_selectors.queue_status_counts(user=request.user, queues=queues)
    honeypots = queue_selectors.honeypots_by_queue(
        user=request.user, project=project, queues=queues
    )
    annotator = can(request.user, project, Capability.ANNOTATE)
    reviewer = can(request.user, project, Capability.REVIEW)
    rows = []
    for queue in queues:
        counts = {s: by_status.get((queue.pk, s), 0) for s in QueueItem.Status.values}
        total = sum(counts.values()) or 1
        assignees = list(queue.assignees.all())
        limited = list(queue.label_classes.all())  # empty: every class
        rows.append(
            {
                "queue": queue,
                "counts": counts,
                "pct": round(100 * counts[QueueItem.Status.DONE] / total),
                "assignees": assignees,
                "classes": limited,
                "mask_classes": [
                    c
                    for c in classes
                    if c.kind == LabelClass.Kind.MASK and (not limited or c in limited)
                ],
                "can_take": annotator and (not assignees or request.user in assignees),
                "honeypots": honeypots.get(queue.pk, []),
            }
        )
    return render(
        request,
        "annotation/queues.html",
        {
            "project": project,
            "rows": rows,
            "form": form,
            "has_classes": bool(classes),
            "sam": sam_installed(),
            "can_review": reviewer,
            "is_viewer": not annotator,
            "returned": queue_selectors.returned_task_list(user=request.user, project=project),
        },
    )


@require_GET
@member_view
def queue_honeypot_candidates(request: HttpRequest, project, queue_id: int) -> HttpResponse:
    """The images a lead may make honeypots of (the queues page loads it when opened).

    Finding them reads the project's accepted work, so the queues page does not do it on
    every view: the Honeypots panel asks for this fragment when a lead opens it.
    """
    require_allowed(request.can_manage, "the project's leads")
    queue = queue_selectors.queue_get(user=request.user, project=project, queue_id=queue_id)
    candidates = queue_selectors.honeypot_candidate_list(
        user=request.user, project=project, queue=queue
    )
    return render(
        request,
        "annotation/queues.html#candidates",
        {"project": project, "queue": queue, "candidates": candidates},
    )


@require_POST
@member_view
def queue_next(request: HttpRequest, project, queue_id: int) -> HttpResponse:
    """Lease the next task (or return the current one) and open it on the canvas."""
    require_allowed(
        can(request.user, project, Capability.ANNOTATE), "annotators, reviewers and leads"
    )
    queue = queue_selectors.queue_get(user=request.user, project=project, queue_id=queue_id)
    try:
        item = queue_services.queue_next(actor=request.user, queue=queue)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("annotation:queue_list", slug=project.slug)
    if item is None:
        messages.success(request, f"Nothing left to do in {queue.name!r}. Thank you!")
        return redirect("annotation:queue_list", slug=project.slug)
    return redirect("annotation:task", slug=project.slug, item_id=item.pk)


@require_POST
@member_view
def queue_honeypots(request: HttpRequest, project, queue_id: int) -> HttpResponse:
    """Mark the chosen images as honeypots of the queue, their accepted annotations the answer."""
    require_allowed(request.can_manage, "the project's leads")
    queue = queue_selectors.queue_get(user=request.user, project=project, queue_id=queue_id)
    try:
        ids = [parse_id(pk) for pk in request.POST.getlist("image_ids")]
        if not ids or None in ids:  # not a number, or beyond what a column holds
            raise ValueError("no usable image ids")
        added = quality_control.queue_add_honeypots(actor=request.user, queue=queue, image_ids=ids)
    except ValueError:
        messages.error(request, "Choose the images to use as honeypots.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"{len(added)} honeypot{'s' if len(added) != 1 else ''} added to {queue.name!r}; "
            "each annotator gets each one once, spread through the queue.",
        )
    return redirect("annotation:queue_list", slug=project.slug)
