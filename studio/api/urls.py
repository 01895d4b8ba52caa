from django.urls import include, path

from . import views as v
from .auth import TokenApi

P = "projects/<slug:slug>/"

urlpatterns = [
    path("auth/token/", TokenApi.as_view(), name="api-token"),
    path("projects/", v.ProjectListApi.as_view(), name="project-list"),
    path(P, v.ProjectDetailApi.as_view(), name="project-detail"),
    path(P + "members/", v.MemberListApi.as_view(), name="member-list"),
    path(P + "members/<id:pk>/", v.MemberDetailApi.as_view(), name="member-detail"),
    path(P + "objectives/", v.ObjectiveListApi.as_view(), name="objective-list"),
    path(P + "objectives/<id:pk>/", v.ObjectiveDetailApi.as_view(), name="objective-detail"),
    path(P + "problem/", v.ProblemStatementApi.as_view(), name="problem"),
    path(P + "datasets/", v.DatasetListApi.as_view(), name="dataset-list"),
    path(P + "datasets/<id:pk>/", v.DatasetDetailApi.as_view(), name="dataset-detail"),
    path(P + "datasets/<id:pk>/versions/", v.VersionListApi.as_view(), name="version-list"),
    path(
        P + "datasets/<id:pk>/versions/<id:number>/",
        v.VersionDetailApi.as_view(),
        name="version-detail",
    ),
    path(
        P + "datasets/<id:pk>/versions/<id:number>/restore/",
        v.VersionRestoreApi.as_view(),
        name="version-restore",
    ),
    path(P + "images/", v.ImageListApi.as_view(), name="image-list"),
    path(P + "images/metadata/", v.ImageMetadataApi.as_view(), name="image-metadata"),
    path(P + "images/<id:pk>/", v.ImageDetailApi.as_view(), name="image-detail"),
    path(P + "uploads/", v.UploadApi.as_view(), name="upload"),
    path("jobs/", v.JobListApi.as_view(), name="job-list"),
    path("jobs/<id:pk>/", v.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<id:pk>/cancel/", v.JobCancelApi.as_view(), name="job-cancel"),
    path("jobs/<id:pk>/retry/", v.JobRetryApi.as_view(), name="job-retry"),
    path("jobs/<id:pk>/files/", v.JobFilesApi.as_view(), name="job-files"),
]
# The stage apps' routes, included by name: the core never imports them.
urlpatterns += [path("", include("annotation.api.urls"))]
