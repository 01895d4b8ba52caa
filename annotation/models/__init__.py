"""The annotation app's data, one module per concern; every model is importable from here
(``annotation.models.X``), so the app label and the migrations are those of one module.

- ``curation``: embeddings, clusters, quality, duplicates, maps, backbone checkpoints
- ``labels``: label classes, annotations, revisions, review decisions
- ``queues``: queues, tasks, honeypots, skips, submissions, consensus
"""

from .curation import (
    BackboneCheckpoint,
    Cluster,
    ClusterMember,
    ClusterRun,
    DuplicateGroup,
    DuplicateMember,
    EmbeddingMap,
    EmbeddingShard,
    EmbeddingSpace,
    ImageEmbedding,
    ImageQuality,
    QualityHistograms,
    VersionImageScore,
)
from .labels import Annotation, AnnotationRevision, LabelClass, ReviewDecision
from .queues import (
    AnnotationQueue,
    ConsensusResult,
    Honeypot,
    QueueItem,
    TaskSkip,
    TaskSubmission,
)

__all__ = [
    "Annotation",
    "AnnotationQueue",
    "AnnotationRevision",
    "BackboneCheckpoint",
    "Cluster",
    "ClusterMember",
    "ClusterRun",
    "ConsensusResult",
    "DuplicateGroup",
    "DuplicateMember",
    "EmbeddingMap",
    "EmbeddingShard",
    "EmbeddingSpace",
    "Honeypot",
    "ImageEmbedding",
    "ImageQuality",
    "LabelClass",
    "QualityHistograms",
    "QueueItem",
    "ReviewDecision",
    "TaskSkip",
    "TaskSubmission",
    "VersionImageScore",
]
