from django.apps import AppConfig


class DeployConfig(AppConfig):
    """Model registry, promotion, rollout, prediction and drift monitoring."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "deploy"
