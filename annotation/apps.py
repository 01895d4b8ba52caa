from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    """Label schema, annotations, pre-annotation, curation, review, formats (issue 4)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "annotation"

    def ready(self) -> None:
        # What this app plugs into the core, which never imports it.
        from annotation.demo import seed_demo_annotation
        from annotation.selectors.labels import member_work
        from annotation.services import (  # noqa: F401 - register job handlers
            batch_preannotation,
            curation,
            embeddings,
            export,
            imports,
        )
        from annotation.services.project_rows import ANNOTATION_ROWS
        from studio.demo import register_demo_seeder
        from studio.selectors import register_member_work
        from studio.services.projects import register_project_rows

        register_demo_seeder(seed_demo_annotation)
        register_project_rows(ANNOTATION_ROWS)
        register_member_work(member_work)
