"""Annotation pages: the label schema, queues, "next task", the canvas and the review list.

The canvas itself is static/js/annotate.js; it talks to the annotation API
(annotation/api_labels.py), so the browser and integrations go through the same services.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation import selectors as curation
from annotation.models import Annotation, ConsensusResult, LabelClass, QueueItem
from annotation.services import exchange as exchange_services
from annotation.services import labels as label_services
from annotation.services import quality_control
from annotation.services import queues as queue_services
from annotation.services.batch_preannotation import preannotate_start
from annotation.services.preannotation import sam_installed
from studio import selectors
from studio.converters import parse_id
from studio.errors import ApplicationError, Forbidden
from studio.models import DatasetVersion, Image, Job
from studio.permissions import Capability, require
from studio.views import _form_error, member_view

REVIEW_PAGE = 24


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

    def __init__(self, *args, project, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = DatasetVersion.objects.filter(
            dataset__project=project, dataset__project__memberships__user=user
        ).select_related("dataset")
        self.fields["version"].label_from_instance = lambda v: (
            f"{v.dataset.name} — version {v.number} ({v.image_count} images)"
        )
        self.members = {  # viewers cannot annotate, so they are not offered
            m.user.username: m.user
            for m in selectors.member_list(user=user, project=project).exclude(role="viewer")
        }
        self.fields["assignees"].choices = [(name, name) for name in sorted(self.members)]
        self.fields["assignees"].widget = forms.CheckboxSelectMultiple(
            choices=self.fields["assignees"].choices
        )


@require_http_methods(["GET", "POST"])
@member_view
def label_classes(request: HttpRequest, project) -> HttpResponse:
    """The label schema: list, add (leads), rename, recolour and delete with the reason shown."""
    form = LabelClassForm(request.POST or None)
    if request.method == "POST":
        try:
            if "delete" in request.POST:
                label_class = curation.label_class_get(
                    user=request.user, project=project, label_class_id=int(request.POST["delete"])
                )
                if request.POST.get("confirm") != "1":
                    return _confirm_label_class_delete(request, project, label_class)
                label_services.label_class_delete(actor=request.user, label_class=label_class)
                messages.success(request, f"Deleted {label_class.name!r}.")
                return redirect("annotation:label_classes", slug=project.slug)
            if "edit" in request.POST:
                label_class = curation.label_class_get(
                    user=request.user, project=project, label_class_id=int(request.POST["edit"])
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
            _form_error(form, exc)
    classes = curation.label_class_list(user=request.user, project=project).annotate(
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
    usage = curation.label_class_usage(user=request.user, label_class=label_class)
    blocked = bool(usage["live"] or usage["deleted"])
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


@require_http_methods(["GET", "POST"])
@member_view
def queue_list(request: HttpRequest, project) -> HttpResponse:
    """Queues with their progress; leads create them here, annotators start from here."""
    form = QueueForm(request.POST or None, project=project, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            queue = queue_services.queue_create(
                actor=request.user, project=project, name=data["name"], version=data["version"],
                assignees=[form.members[name] for name in data["assignees"]],
                instructions=data["instructions"], lease_minutes=data["lease_minutes"],
                annotators_per_image=data["annotators_per_image"],
            )  # fmt: skip
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Queue {queue.name!r} holds {queue.items.count()} tasks.")
            return redirect("annotation:queue_list", slug=project.slug)
    queues = list(
        curation.queue_list(user=request.user, project=project).prefetch_related("assignees")
    )
    classes = list(curation.label_class_list(user=request.user, project=project))
    by_status = {
        (row["queue_id"], row["status"]): row["n"]
        for row in QueueItem.objects.filter(queue__in=queues)
        .values("queue_id", "status")
        .annotate(n=Count("id"))
    }
    rows = []
    for queue in queues:
        counts = {s: by_status.get((queue.pk, s), 0) for s in QueueItem.Status.values}
        total = sum(counts.values()) or 1
        rows.append((queue, counts, round(100 * counts[QueueItem.Status.DONE] / total)))
    return render(
        request,
        "annotation/queues.html",
        {
            "project": project,
            "rows": rows,
            "form": form,
            "has_classes": bool(classes),
            "mask_classes": [c for c in classes if c.kind == LabelClass.Kind.MASK],
            "sam": sam_installed(),
            "can_review": _can_review(request.user, project),
        },
    )


def _can_review(user, project) -> bool:
    try:
        return require(user, project, Capability.VIEW) in ("lead", "reviewer")
    except Forbidden:
        return False


@require_POST
@member_view
def queue_next(request: HttpRequest, project, queue_id: int) -> HttpResponse:
    """Lease the next task (or return the current one) and open it on the canvas."""
    queue = curation.queue_get(user=request.user, project=project, queue_id=queue_id)
    try:
        item = queue_services.queue_next(actor=request.user, queue=queue)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("annotation:queue_list", slug=project.slug)
    if item is None:
        messages.success(request, f"Nothing left to do in {queue.name!r}. Thank you!")
        return redirect("annotation:queue_list", slug=project.slug)
    return redirect("annotation:task", slug=project.slug, item_id=item.pk)


def _canvas_config(request, project, image: Image, **extra) -> dict:
    classes = curation.label_class_list(user=request.user, project=project)
    api = f"/api/v1/projects/{project.slug}"
    config = {
        "image": {
            "id": image.pk,
            "width": image.width,
            "height": image.height,
            "url": reverse("studio:image_file", kwargs={"pk": image.pk, "kind": "original"}),
            "name": image.original_name,
        },
        "classes": [
            {
                "id": c.pk,
                "name": c.name,
                "kind": c.kind,
                "colour": c.colour,
                "attributes": c.attributes,
            }
            for c in classes
        ],  # fmt: skip
        "api": {
            "annotations": f"{api}/images/{image.pk}/annotations/",
            "annotation": f"{api}/annotations/",
            "preannotate": f"{api}/images/{image.pk}/preannotate/",
            "prepare": f"{api}/images/{image.pk}/preannotate/prepare/",
        },
        "user": request.user.username,
        "preannotator": "Segment Anything" if sam_installed() else "GrabCut",
        **extra,
    }
    if extra.get("task"):  # a task shows only what its annotator may see (consensus, honeypots)
        config["api"]["list"] = f"{config['api']['annotations']}?task={extra['task']}"
    return config


@require_GET
@member_view
def task(request: HttpRequest, project, item_id: int) -> HttpResponse:
    """An annotator's task: the canvas over the task's image, with submit-and-next."""
    item = curation.queue_item_get(user=request.user, project=project, item_id=item_id)
    if item.assignee_id != request.user.pk or item.status != QueueItem.Status.IN_PROGRESS:
        messages.error(
            request,
            "That task is not yours right now (it was submitted, or its lease ran out and someone "
            "else took it). Start annotating to get your next task.",
        )
        return redirect("annotation:queue_list", slug=project.slug)
    rejected = (
        Annotation.objects.filter(image=item.image, author=request.user, deleted=False,
                                  status=Annotation.Status.REJECTED)
        .prefetch_related("reviews")
    )  # fmt: skip
    comments = [
        (a, a.reviews.filter(decision="reject").order_by("-created_at").first()) for a in rejected
    ]
    config = _canvas_config(
        request, project, item.image, mode="annotate", task=item.pk,
        submit=f"/api/v1/projects/{project.slug}/queue-items/{item.pk}/submit/",
        lease_expires_at=item.lease_expires_at.isoformat() if item.lease_expires_at else None,
        next=reverse("annotation:queue_next", kwargs={"slug": project.slug, "queue_id": item.queue_id}),
    )  # fmt: skip
    return render(
        request,
        "annotation/canvas.html",
        {
            "project": project,
            "item": item,
            "queue": item.queue,
            "image": item.image,
            "config": config,
            "comments": comments,
            "lease_expires_at": item.lease_expires_at,
        },
    )


def _review_images(user, project, queue_id: int | None):
    images = selectors.image_list(user=user, project=project).filter(
        annotations__status=Annotation.Status.SUBMITTED, annotations__deleted=False
    )
    if queue_id:
        images = images.filter(
            pk__in=QueueItem.objects.filter(queue_id=queue_id).values("image_id")
        )
    return images.annotate(
        submitted=Count(
            "annotations",
            filter=Q(annotations__status=Annotation.Status.SUBMITTED, annotations__deleted=False),
            distinct=True,
        )
    ).order_by("pk")


@require_GET
@member_view
def review_list(request: HttpRequest, project) -> HttpResponse:
    """Images with submitted work waiting for a reviewer."""
    if not _can_review(request.user, project):
        messages.error(request, "Only reviewers and leads review annotations.")
        return redirect("studio:project_detail", slug=project.slug)
    queue_id = _int(request.GET.get("queue"))
    page = Paginator(_review_images(request.user, project, queue_id), REVIEW_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "annotation/review_list.html",
        {
            "project": project,
            "page": page,
            "queues": curation.queue_list(user=request.user, project=project),
            "queue_id": queue_id,
        },
    )


def _int(value) -> int | None:
    return parse_id(value)


@require_GET
@member_view
def review_image(request: HttpRequest, project, image_id: int) -> HttpResponse:
    """The canvas in review mode: accept or reject each submitted annotation, or edit it."""
    if not _can_review(request.user, project):
        messages.error(request, "Only reviewers and leads review annotations.")
        return redirect("studio:project_detail", slug=project.slug)
    image = selectors.image_get(user=request.user, project=project, image_id=image_id)
    queue_id = _int(request.GET.get("queue"))
    following = _review_images(request.user, project, queue_id).filter(pk__gt=image.pk).first()
    next_url = reverse("annotation:review_list", kwargs={"slug": project.slug})
    if following is not None:
        next_url = reverse(
            "annotation:review_image", kwargs={"slug": project.slug, "image_id": following.pk}
        )
    if queue_id:
        next_url += f"?queue={queue_id}"
    # A consensus image whose replicas are not merged yet: review the merge, not N copies.
    unmerged = (
        ConsensusResult.objects.filter(queue__project=project, image=image, merged_at__isnull=True)
        .select_related("queue")
        .first()
    )
    config = _canvas_config(
        request, project, image, mode="review", next=next_url,
        review=f"/api/v1/projects/{project.slug}/annotations/", consensus=unmerged is not None,
    )  # fmt: skip
    return render(
        request,
        "annotation/canvas.html",
        {"project": project, "image": image, "config": config, "review": True,
         "unmerged": unmerged},
    )  # fmt: skip


@require_POST
@member_view
def review_merge(request: HttpRequest, project, image_id: int, queue_id: int) -> HttpResponse:
    """Merge a consensus image's replicas (majority vote), then review the result."""
    queue = curation.queue_get(user=request.user, project=project, queue_id=queue_id)
    image = selectors.image_get(user=request.user, project=project, image_id=image_id)
    try:
        merged = quality_control.consensus_merge(actor=request.user, queue=queue, image=image)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Merged into {len(merged)} annotation(s); review them below.")
    return redirect("annotation:review_image", slug=project.slug, image_id=image.pk)


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
    export_form = ExportForm(request.POST if action == "export" else None, prefix="export")
    import_form = ImportForm(
        request.POST if action == "import" else None,
        request.FILES if action == "import" else None,
        prefix="import",
    )
    for form in (export_form, import_form):
        form.fields["version"].choices = choices
    if action == "export" and export_form.is_valid():
        data = export_form.cleaned_data
        try:
            job = exchange_services.export_start(
                actor=request.user, version=versions[data["version"]], fmt=data["format"],
                statuses=data["statuses"],
            )  # fmt: skip
        except ApplicationError as exc:
            _form_error(export_form, exc)
        else:
            return redirect("studio:job_detail", job_id=job.pk)
    if action == "import" and import_form.is_valid():
        data = import_form.cleaned_data
        try:
            job = exchange_services.import_start(
                actor=request.user, version=versions[data["version"]], fmt=data["format"],
                upload=data["file"], status=data["status"],
                create_classes=data["create_classes"], dry_run=data["dry_run"],
                mode=data["mode"],
            )  # fmt: skip
        except ApplicationError as exc:
            _form_error(import_form, exc)
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
         "import_form": import_form, "jobs": jobs, "has_versions": bool(versions)},
    )  # fmt: skip


@require_POST
@member_view
def queue_preannotate(request: HttpRequest, project, queue_id: int) -> HttpResponse:
    """Start a batch pre-annotation of a queue's images from the queue list."""
    queue = curation.queue_get(user=request.user, project=project, queue_id=queue_id)
    mode = request.POST.get("mode", "")
    try:
        label_class = curation.label_class_get(
            user=request.user, project=project, label_class_id=int(request.POST["label_class"])
        )
        params: dict = {"method": "auto"}
        if mode == "automatic":
            params = {"points_per_side": int(request.POST.get("points_per_side") or 16)}
        job = preannotate_start(
            actor=request.user, label_class=label_class, mode=mode, queue=queue, params=params
        )
    except (KeyError, ValueError):
        messages.error(request, "Choose a mask class and a whole number of points per side.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        return redirect("studio:job_detail", job_id=job.pk)
    return redirect("annotation:queue_list", slug=project.slug)
