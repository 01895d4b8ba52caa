"""The annotation part of the demo project: its label schema and a first queue.

Registered with studio/demo.py from AnnotationConfig.ready(); ``seed_demo`` calls it
once the demo's scenes are a dataset version.
"""

from __future__ import annotations

from annotation.services import labels, queues
from studio.models import Project


def seed_demo_annotation(*, user, project: Project, version) -> None:
    """The label schema of the demo and a queue over the first scenes, ready to annotate."""
    for name, kind, colour, attributes in [
        ("circle", "mask", "#e5484d", {"occluded": ["no", "yes"]}),
        ("square", "mask", "#3e63dd", {"occluded": ["no", "yes"]}),
        ("triangle", "mask", "#30a46c", {"occluded": ["no", "yes"]}),
        ("object box", "box", "#f76b15", {}),
        ("outline", "polygon", "#8e4ec6", {}),
        ("too dark to label", "tag", "#6f6e77", {}),
    ]:
        labels.label_class_create(
            actor=user, project=project, name=name, kind=kind, colour=colour, attributes=attributes
        )
    first = list(version.items.order_by("image_id").values_list("image_id", flat=True)[:20])
    queues.queue_create(
        actor=user,
        project=project,
        name="Outline the shapes",
        image_ids=first,
        instructions=(
            "Mask every circle, square and triangle: pick the class, then click the shape with "
            "the Smart tool. Fix edges with the brush (R) and eraser (E). Tag images too dark to "
            "label."
        ),
    )
