"""What the annotation app keeps in a project, for the core's project deletion.

Registered with studio/services/projects.py from AnnotationConfig.ready(): the delete
confirmation counts these rows, and the delete removes annotations first.
"""

from __future__ import annotations

from annotation.models import Annotation, LabelClass
from studio.models import Project
from studio.services.projects import ProjectRows


def project_label_counts(project: Project) -> dict[str, int]:
    """Count the project's annotations (soft-deleted ones included) and label classes."""
    return {
        "annotations": Annotation.objects.filter(image__project=project).count(),
        "label_classes": LabelClass.objects.filter(project=project).count(),
    }


def project_annotations_delete(project: Project) -> None:
    """Delete the project's annotations ahead of the project itself.

    Annotations protect their label classes (a class in use is never deleted alone): they
    go first, so the project's classes can follow it.
    """
    Annotation.objects.filter(image__project=project).delete()


ANNOTATION_ROWS = ProjectRows(count=project_label_counts, delete_first=project_annotations_delete)
