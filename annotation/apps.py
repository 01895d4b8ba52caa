from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    """Label schema, annotations, pre-annotation, curation, review, formats (issue 4)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "annotation"

    def ready(self) -> None:
        from annotation.services import (  # noqa: F401 - register job handlers
            batch_preannotation,
            curation,
            embeddings,
            export,
            imports,
        )
