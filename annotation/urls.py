from django.urls import path

from annotation.views import canvas as vc
from annotation.views import curation as v
from annotation.views import exchange as vx
from annotation.views import images as vi
from annotation.views import labels as va
from annotation.views import preannotate as vp
from annotation.views import quality as vq
from annotation.views import queues as vqu
from annotation.views import review as vr

app_name = "annotation"
D = "p/<slug:slug>/datasets/<id:dataset_id>/"

urlpatterns = [
    path(D + "curate/", v.curate, name="curate"),
    path(D + "curate/run/<str:kind>/", v.run_job, name="run_job"),
    path(D + "curate/apply/", v.apply, name="apply"),
    path(D + "curate/checkpoints/", v.checkpoint_upload, name="checkpoint_upload"),
    path(D + "curate/clusters/<id:cluster_id>/", v.cluster_rename, name="cluster_rename"),
    path(D + "duplicates/", v.duplicates, name="duplicates"),
    path(D + "duplicates/<id:member_id>/keep/", v.duplicate_keep, name="duplicate_keep"),
    path(D + "outliers/", v.outliers, name="outliers"),
    path(D + "versions/<id:number>/embed/", v.version_embed, name="version_embed"),
    path("p/<slug:slug>/queues/<id:queue_id>/stats/", vq.queue_stats, name="queue_stats"),
]

P = "p/<slug:slug>/"
urlpatterns += [
    path(P + "labels/", va.label_classes, name="label_classes"),
    path(P + "images/<id:image_id>/", vi.image_detail, name="image_detail"),
    path(P + "queues/", vqu.queue_list, name="queue_list"),
    path(P + "queues/<id:queue_id>/next/", vqu.queue_next, name="queue_next"),
    path(P + "queues/<id:queue_id>/honeypots/", vqu.queue_honeypots, name="queue_honeypots"),
    path(
        P + "queues/<id:queue_id>/honeypots/candidates/",
        vqu.queue_honeypot_candidates,
        name="queue_honeypot_candidates",
    ),
    path(P + "tasks/<id:item_id>/", vc.task, name="task"),
    path(P + "tasks/<id:item_id>/skip/", vc.task_skip, name="task_skip"),
    path(P + "review/", vr.review_list, name="review_list"),
    path(P + "review/images/<id:image_id>/", vr.review_image, name="review_image"),
]
urlpatterns += [path(D + "exchange/", vx.exchange, name="exchange")]
urlpatterns += [
    path(P + "queues/<id:queue_id>/preannotate/", vp.queue_preannotate, name="queue_preannotate")
]
urlpatterns += [
    path(
        P + "review/images/<id:image_id>/merge/<id:queue_id>/",
        vr.review_merge,
        name="review_merge",
    )
]
