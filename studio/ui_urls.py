from django.urls import path

from . import views as v
from . import views_confirm
from .api.views import ImageFileApi

app_name = "studio"
P = "p/<slug:slug>/"

urlpatterns = [
    path("", v.project_list, name="project_list"),
    path("projects/new/", v.project_create, name="project_create"),
    path(P, v.project_detail, name="project_detail"),
    path(P + "edit/", v.project_edit, name="project_edit"),
    path(P + "objectives/new/", v.objective_edit, name="objective_create"),
    path(P + "objectives/<id:objective_id>/edit/", v.objective_edit, name="objective_edit"),
    path(P + "problem/", v.problem_edit, name="problem_edit"),
    path(P + "members/", v.members, name="members"),
    path(P + "members/<id:membership_id>/", v.member_change, name="member_change"),
    path(P + "datasets/new/", v.dataset_create, name="dataset_create"),
    path(P + "datasets/<id:dataset_id>/", v.dataset_detail, name="dataset_detail"),
    path(P + "datasets/<id:dataset_id>/upload/", v.upload, name="upload"),
    path(P + "datasets/<id:dataset_id>/snapshot/", v.dataset_snapshot, name="dataset_snapshot"),
    path(P + "datasets/<id:dataset_id>/metadata/", v.dataset_metadata, name="dataset_metadata"),
    path(
        P + "datasets/<id:dataset_id>/versions/<id:number>/embed/",
        v.version_embed,
        name="version_embed",
    ),
    path(
        P + "datasets/<id:dataset_id>/versions/<id:number>/restore/",
        views_confirm.version_restore,
        name="version_restore",
    ),
    path(P + "images/<id:image_id>/", v.image_detail, name="image_detail"),
    path("jobs/", v.job_list, name="job_list"),
    path("jobs/<id:job_id>/", v.job_detail, name="job_detail"),
    path("jobs/<id:job_id>/<str:action>/", v.job_action, name="job_action"),
    path("files/images/<id:pk>/<str:kind>", ImageFileApi.as_view(), name="image_file"),
]
