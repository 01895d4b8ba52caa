"""The ML lead's view of annotation: the schema, queues, annotations and review, quality.

Annotations, reviews, honeypots and consensus results are read-only here: changes go
through the services (the canvas, the API), which write revisions and keep versions.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q

from annotation.models import (
    Annotation,
    AnnotationQueue,
    AnnotationRevision,
    ConsensusResult,
    Honeypot,
    LabelClass,
    QueueItem,
    ReviewDecision,
    TaskSkip,
    TaskSubmission,
)


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "kind", "colour", "used"]
    list_filter = ["kind", "project"]
    search_fields = ["name", "previous_names"]
    readonly_fields = ["previous_names", "created_at"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_used=Count("annotations", filter=Q(annotations__deleted=False)))
        )

    @admin.display(description="annotations", ordering="_used")
    def used(self, obj) -> int:
        return obj._used

    def has_change_permission(self, request, obj=None):
        return False  # renames keep their history through the Label classes page and the API

    def has_delete_permission(self, request, obj=None):
        return False  # a class in use must not go; the page and the API refuse with the count


class HoneypotInline(ReadOnlyInline):
    model = Honeypot
    fields = ["image", "position", "created_by", "created_at"]
    readonly_fields = fields


@admin.register(AnnotationQueue)
class AnnotationQueueAdmin(ReadOnly):
    list_display = ["name", "project", "annotators_per_image", "lease_minutes", "tasks", "done"]
    list_filter = ["project"]
    search_fields = ["name"]
    inlines = [HoneypotInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _tasks=Count("items"),
                _done=Count("items", filter=Q(items__status=QueueItem.Status.DONE)),
            )
        )

    @admin.display(ordering="_tasks")
    def tasks(self, obj) -> int:
        return obj._tasks

    @admin.display(ordering="_done")
    def done(self, obj) -> int:
        return obj._done


class RevisionInline(ReadOnlyInline):
    model = AnnotationRevision
    fields = ["version", "action", "author", "created_at"]
    readonly_fields = fields


class ReviewInline(ReadOnlyInline):
    model = ReviewDecision
    fields = ["decision", "reviewer", "comment", "annotation_version", "created_at"]
    readonly_fields = fields


@admin.register(Annotation)
class AnnotationAdmin(ReadOnly):
    list_display = ["id", "image", "label_class", "kind", "status", "source", "confidence",
                    "author", "version", "deleted", "updated_at"]  # fmt: skip
    list_filter = ["status", "source", "kind", "deleted", "label_class__project"]
    search_fields = ["image__original_name", "label_class__name", "source_detail"]
    list_select_related = ["image", "label_class", "author"]
    inlines = [RevisionInline, ReviewInline]


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(ReadOnly):
    list_display = ["annotation", "decision", "reviewer", "comment", "created_at"]
    list_filter = ["decision"]
    search_fields = ["comment", "reviewer__username"]


@admin.register(TaskSubmission)
class TaskSubmissionAdmin(ReadOnly):
    list_display = ["queue", "item", "annotator", "leased_at", "submitted_at", "honeypot_score"]
    list_filter = ["queue"]


@admin.register(TaskSkip)
class TaskSkipAdmin(ReadOnly):
    list_display = ["queue", "item", "image", "annotator", "created_at"]
    list_filter = ["queue"]


@admin.register(ConsensusResult)
class ConsensusResultAdmin(ReadOnly):
    list_display = ["queue", "image", "agreement", "computed_at", "merged_at", "merged_by"]
    list_filter = ["queue"]
