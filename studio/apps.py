from django.apps import AppConfig


class StudioConfig(AppConfig):
    """Core domain: projects, objectives, problem statements, datasets, images and jobs."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "studio"
    verbose_name = "Studio"

    def ready(self) -> None:
        from django.urls import register_converter

        from studio.converters import IdConverter

        register_converter(IdConverter, "id")  # before any URLconf is loaded
        from studio import tasks
        from studio.services import ingest  # noqa: F401 - registers the ingest job handler
        from studio.services.jobs import register_worker_tasks

        # Jobs reach workers through these tasks; the tasks call back into the job service.
        register_worker_tasks(cpu=tasks.run_job, gpu=tasks.run_gpu_job)
