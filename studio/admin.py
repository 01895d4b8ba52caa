"""The ML lead's panel: members and roles, objectives, problem statements, datasets, jobs."""

from __future__ import annotations

from django.contrib import admin, messages

from studio.errors import ApplicationError
from studio.models import (
    Approach,
    Dataset,
    DatasetVersion,
    Image,
    IngestFile,
    Job,
    Membership,
    Objective,
    ProblemStatement,
    Project,
    SuccessCriterion,
)
from studio.services.jobs import job_request_cancel, job_requeue


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


class ObjectiveInline(admin.TabularInline):
    model = Objective
    extra = 0
    fields = ["title", "kpi", "target_value", "unit", "direction", "deadline", "status"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_by", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, ObjectiveInline]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]


@admin.register(Objective)
class ObjectiveAdmin(admin.ModelAdmin):
    list_display = ["title", "project", "kpi", "target_value", "unit", "deadline", "status"]
    list_filter = ["status", "project"]


class ApproachInline(admin.TabularInline):
    model = Approach
    extra = 0


class CriterionInline(admin.TabularInline):
    model = SuccessCriterion
    extra = 0


@admin.register(ProblemStatement)
class ProblemStatementAdmin(admin.ModelAdmin):
    list_display = [
        "project",
        "task_type",
        "serving_mode",
        "latency_budget_ms",
        "model_size_budget_mb",
    ]
    inlines = [CriterionInline, ApproachInline]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "created_by", "created_at"]
    list_filter = ["project"]
    search_fields = ["name"]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    """Versions are immutable: the admin shows them and never edits them."""

    list_display = ["dataset", "number", "image_count", "manifest_hash", "created_at"]
    list_filter = ["dataset__project"]
    readonly_fields = [f.name for f in DatasetVersion._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["original_name", "project", "format", "width", "height", "created_at"]
    list_filter = ["project", "format"]
    search_fields = ["original_name", "sha256"]
    readonly_fields = [
        "sha256",
        "file",
        "thumbnail",
        "format",
        "width",
        "height",
        "byte_size",
        "captured_at",
    ]


class IngestFileInline(admin.TabularInline):
    model = IngestFile
    extra = 0
    can_delete = False
    readonly_fields = ["position", "name", "outcome", "reason", "image"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "project",
        "status",
        "progress",
        "attempts",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "kind", "project"]
    readonly_fields = [f.name for f in Job._meta.fields]
    inlines = [IngestFileInline]
    actions = ["retry", "cancel"]

    def has_add_permission(self, request):
        return False

    def _apply(self, request, queryset, fn, verb: str) -> None:
        done = 0
        for job in queryset:
            try:
                fn(job=job)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"Job {job.pk}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"{done} job(s) {verb}.", messages.SUCCESS)

    @admin.action(
        description="Retry selected jobs (resume from checkpoint)", permissions=["change"]
    )
    def retry(self, request, queryset):
        self._apply(request, queryset, job_requeue, "queued again")

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel(self, request, queryset):
        self._apply(request, queryset, job_request_cancel, "cancelled")

    def has_change_permission(self, request, obj=None):
        # Fields are read-only; "change" gates the retry/cancel actions.
        return super().has_change_permission(request, obj)
