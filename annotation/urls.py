from django.urls import path

from . import views as v
from . import views_quality as vq

app_name = "annotation"
D = "p/<slug:slug>/datasets/<int:dataset_id>/"

urlpatterns = [
    path(D + "curate/", v.curate, name="curate"),
    path(D + "curate/run/<str:kind>/", v.run_job, name="run_job"),
    path(D + "curate/apply/", v.apply, name="apply"),
    path(D + "curate/checkpoints/", v.checkpoint_upload, name="checkpoint_upload"),
    path(D + "curate/clusters/<int:cluster_id>/", v.cluster_rename, name="cluster_rename"),
    path(D + "duplicates/", v.duplicates, name="duplicates"),
    path(D + "duplicates/<int:member_id>/keep/", v.duplicate_keep, name="duplicate_keep"),
    path(D + "outliers/", v.outliers, name="outliers"),
    path("p/<slug:slug>/queues/<int:queue_id>/stats/", vq.queue_stats, name="queue_stats"),
]
