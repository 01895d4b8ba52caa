"""Exchange page: export a dataset version's annotations to a format, or import a file.

The work runs as jobs (annotation/services/export.py and imports.py); this page starts
them and lists the recent ones.
"""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotation.models import Annotation
from annotation.services.export import export_start
from annotation.services.imports import import_start
from studio import selectors
from studio.errors import ApplicationError
from studio.models import Job
from studio.permissions import Capability, can
from studio.views import form_error, member_view, require_allowed

FORMAT_CHOICES = [
    ("coco", "COCO (instances: RLE masks, polygons, boxes)"),
    ("yolo", "YOLO (detection boxes, segmentation polygons)"),
    ("voc", "Pascal VOC (boxes, PNG masks)"),
    ("labelstudio", "Label Studio JSON"),
    ("cvat", "CVAT XML for images 1.1"),
]


class ExportForm(forms.Form):
    version = forms.TypedChoiceField(coerce=int)
    format = forms.ChoiceField(choices=FORMAT_CHOICES)
    statuses = forms.MultipleChoiceField(
        choices=Annotation.Status.choices,
        initial=[Annotation.Status.ACCEPTED],
        widget=forms.CheckboxSelectMultiple,
        help_text="Only annotations with these statuses.",
    )


class ImportForm(forms.Form):
    version = forms.TypedChoiceField(coerce=int)
    format = forms.ChoiceField(choices=FORMAT_CHOICES)
    file = forms.FileField(help_text="The annotation file, or a zip of it with its masks.")
    status = forms.ChoiceField(
        choices=[("submitted", "Submitted (for review)"), ("draft", "Draft")],
        initial="submitted",
        label="Import as",
    )
    create_classes = forms.BooleanField(
        required=False, help_text="Add classes the file names that the schema lacks (leads)."
    )
    dry_run = forms.BooleanField(
        required=False, label="Check only", help_text="Check every record, write nothing."
    )
    mode = forms.ChoiceField(
        choices=[
            ("skip", "Skip shapes already there"),
            ("replace", "Replace the annotations of the images in the file (leads)"),
            ("append", "Append everything"),
        ],
        initial="skip",
        label="Existing annotations",
    )


@require_http_methods(["GET", "POST"])
@member_view
def exchange(request: HttpRequest, project, dataset_id: int) -> HttpResponse:
    """Export a version's annotations to a format, or import a file into a version."""
    dataset = selectors.dataset_get(user=request.user, project=project, dataset_id=dataset_id)
    versions = {v.number: v for v in selectors.version_list(user=request.user, dataset=dataset)}
    choices = [(n, f"v{n} ({v.image_count} images)") for n, v in versions.items()]
    action = request.POST.get("action")
    can_export = can(request.user, project, Capability.SEE_ALL_LABELS)
    can_import = can(request.user, project, Capability.ANNOTATE)
    if action == "export":
        require_allowed(can_export, "the project's leads, reviewers and viewers")
    if action == "import":
        require_allowed(can_import, "the project's leads, reviewers and annotators")
    export_form = ExportForm(request.POST if action == "export" else None, prefix="export")
    import_form = ImportForm(
        request.POST if action == "import" else None,
        request.FILES if action == "import" else None,
        prefix="import",
    )
    for form in (export_form, import_form):
        form.fields["version"].choices = choices
    if not request.can_manage:  # replacing others' annotations is for leads: not offered
        mode = import_form.fields["mode"]
        mode.choices = [(value, label) for value, label in mode.choices if value != "replace"]
    if action == "export" and export_form.is_valid():
        data = export_form.cleaned_data
        try:
            job = export_start(
                actor=request.user, version=versions[data["version"]], fmt=data["format"],
                statuses=data["statuses"],
            )  # fmt: skip
        except ApplicationError as exc:
            form_error(export_form, exc)
        else:
            return redirect("studio:job_detail", job_id=job.pk)
    if action == "import" and import_form.is_valid():
        data = import_form.cleaned_data
        try:
            job = import_start(
                actor=request.user, version=versions[data["version"]], fmt=data["format"],
                upload=data["file"], status=data["status"],
                create_classes=data["create_classes"], dry_run=data["dry_run"],
                mode=data["mode"],
            )  # fmt: skip
        except ApplicationError as exc:
            form_error(import_form, exc)
        else:
            return redirect("studio:job_detail", job_id=job.pk)
    jobs = [
        job
        for job in selectors.job_list(user=request.user, project=project).filter(
            kind__in=[Job.Kind.EXPORT, Job.Kind.IMPORT]
        )[:50]
        if job.params.get("version") in {v.pk for v in versions.values()}
    ][:15]
    return render(
        request,
        "annotation/exchange.html",
        {"project": project, "dataset": dataset, "export_form": export_form,
         "import_form": import_form, "jobs": jobs, "has_versions": bool(versions),
         "can_export": can_export, "can_import": can_import},
    )  # fmt: skip
