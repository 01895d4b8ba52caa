from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    """Training runs, evaluation runs and metrics."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "evaluation"
