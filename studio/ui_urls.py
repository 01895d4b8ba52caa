from django.urls import path

from .api.views import ImageFileApi
from .views import confirm, datasets, jobs, projects

app_name = "studio"
P = "p/<slug:slug>/"

urlpatterns = [
    path("", projects.project_list, name="project_list"),
    path("projects/new/", projects.project_create, name="project_create"),
    path(P, projects.project_detail, name="project_detail"),
    path(P + "edit/", projects.project_edit, name="project_edit"),
    path(P + "objectives/new/", projects.objective_edit, name="objective_create"),
    path(P + "objectives/<id:objective_id>/edit/", projects.objective_edit, name="objective_edit"),
    path(P + "problem/", projects.problem_edit, name="problem_edit"),
    path(P + "members/", projects.members, name="members"),
    path(P + "members/<id:membership_id>/", projects.member_change, name="member_change"),
    path(P + "datasets/new/", datasets.dataset_create, name="dataset_create"),
    path(P + "datasets/<id:dataset_id>/", datasets.dataset_detail, name="dataset_detail"),
    path(P + "datasets/<id:dataset_id>/upload/", datasets.upload, name="upload"),
    path(
        P + "datasets/<id:dataset_id>/snapshot/", datasets.dataset_snapshot, name="dataset_snapshot"
    ),
    path(
        P + "datasets/<id:dataset_id>/metadata/", datasets.dataset_metadata, name="dataset_metadata"
    ),
    path(
        P + "datasets/<id:dataset_id>/versions/<id:number>/restore/",
        confirm.version_restore,
        name="version_restore",
    ),
    path("jobs/", jobs.job_list, name="job_list"),
    path("jobs/<id:job_id>/", jobs.job_detail, name="job_detail"),
    path("jobs/<id:job_id>/<str:action>/", jobs.job_action, name="job_action"),
    path("files/images/<id:pk>/<str:kind>", ImageFileApi.as_view(), name="image_file"),
]
