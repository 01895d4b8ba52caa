"""Label schema page: the project's label classes, created, edited and deleted here.

Queues live in annotation/views/queues.py, the task canvas in annotation/views/canvas.py,
review in annotation/views/review.py and export/import in annotation/views/exchange.py.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from annotation.models import LabelClass
from annotation.selectors import labels as label_selectors
from annotation.services import labels as label_services
from studio.converters import parse_id
from studio.errors import ApplicationError
from studio.views import form_error, member_view, require_allowed


class LabelClassForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=LabelClass.Kind.choices)
    colour = forms.CharField(
        max_length=7, initial="#3559e0", widget=forms.TextInput(attrs={"type": "color"})
    )
    attributes = forms.CharField(
        required=False,
        help_text="One per line: name: value, value (e.g. occluded: yes, no).",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_attributes(self) -> dict[str, list[str]]:
        parsed: dict[str, list[str]] = {}
        for n, line in enumerate(self.cleaned_data["attributes"].splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, values = line.partition(":")
            allowed = [v.strip() for v in values.split(",") if v.strip()]
            if not sep or not name.strip() or not allowed:
                raise forms.ValidationError(
                    f"Line {n}: write 'name: value, value' (got {line.strip()!r})."
                )
            parsed[name.strip()] = allowed
        return parsed


def _attributes_text(attributes: dict) -> str:
    return "\n".join(f"{name}: {', '.join(values)}" for name, values in attributes.items())


@require_http_methods(["GET", "POST"])
@member_view
def label_classes(request: HttpRequest, project) -> HttpResponse:
    """The label schema: list, add (leads), rename, recolour and delete with the reason shown."""
    if request.method == "POST":
        require_allowed(request.can_manage, "the project's leads")
    form = LabelClassForm(request.POST or None)
    if request.method == "POST":
        try:
            if "delete" in request.POST:
                label_class = label_selectors.label_class_get(
                    user=request.user,
                    project=project,
                    label_class_id=parse_id(request.POST["delete"]) or 0,
                )
                if request.POST.get("confirm") != "1":
                    return _confirm_label_class_delete(request, project, label_class)
                label_services.label_class_delete(actor=request.user, label_class=label_class)
                messages.success(request, f"Deleted {label_class.name!r}.")
                return redirect("annotation:label_classes", slug=project.slug)
            if "edit" in request.POST:
                label_class = label_selectors.label_class_get(
                    user=request.user,
                    project=project,
                    label_class_id=parse_id(request.POST["edit"]) or 0,
                )
                edit = LabelClassForm({**request.POST.dict(), "kind": label_class.kind})
                if not edit.is_valid():
                    messages.error(request, "; ".join(m for e in edit.errors.values() for m in e))
                    return redirect("annotation:label_classes", slug=project.slug)
                label_services.label_class_update(
                    actor=request.user, label_class=label_class, name=edit.cleaned_data["name"],
                    colour=edit.cleaned_data["colour"], attributes=edit.cleaned_data["attributes"],
                )  # fmt: skip
                messages.success(request, f"Saved {label_class.name!r}.")
                return redirect("annotation:label_classes", slug=project.slug)
            if form.is_valid():
                created = label_services.label_class_create(
                    actor=request.user, project=project, **form.cleaned_data
                )
                messages.success(request, f"Added {created.name!r}.")
                return redirect("annotation:label_classes", slug=project.slug)
        except ApplicationError as exc:
            if "delete" in request.POST or "edit" in request.POST:
                messages.error(request, exc.message)
                return redirect("annotation:label_classes", slug=project.slug)
            form_error(form, exc)
    classes = label_selectors.label_class_list(user=request.user, project=project).annotate(
        used=Count("annotations", filter=Q(annotations__deleted=False))
    )
    return render(
        request,
        "annotation/label_classes.html",
        {
            "project": project,
            "classes": [(c, _attributes_text(c.attributes)) for c in classes],
            "form": form,
        },
    )


def _confirm_label_class_delete(request, project, label_class) -> HttpResponse:
    """Say what deleting a class affects before it is done (or why it cannot be)."""
    usage = label_selectors.label_class_usage(user=request.user, label_class=label_class)
    blocked = bool(usage["live"] or usage["deleted"] or usage["queues"])
    if usage["live"]:
        message = (
            f"{usage['live']} annotation{pluralize(usage['live'])} use {label_class.name!r}: "
            "relabel or delete them first."
        )
    elif usage["deleted"]:
        message = (
            f"{usage['deleted']} deleted annotation{pluralize(usage['deleted'])} of "
            f"{label_class.name!r} are kept so they can be restored: rename the class instead."
        )
    elif usage["queues"]:
        message = (
            f"{usage['queues']} queue{pluralize(usage['queues'])} "
            f"{'takes' if usage['queues'] == 1 else 'take'} only some classes, "
            f"{label_class.name!r} among them: change their classes first."
        )
    else:
        message = f"Delete the class {label_class.name!r}? No annotation uses it."
    return render(
        request,
        "confirm.html",
        {
            "project": project,
            "title": f"Delete the label class {label_class.name!r}",
            "message": message,
            "details": [
                "Annotators will no longer be able to draw it; queues and exports stop "
                "listing it. This cannot be undone (add the class again to get it back)."
            ]
            if not blocked
            else [],
            "action": request.path,
            "fields": [("delete", label_class.pk)],
            "button": f"Delete {label_class.name}",
            "danger": True,
            "blocked": blocked,
            "cancel": reverse("annotation:label_classes", args=[project.slug]),
        },
    )
