from django.conf import settings
from django.core.management.base import BaseCommand

from annotation.services.export import exports_expire


class Command(BaseCommand):
    help = (
        "Delete export archives older than STUDIO_EXPORT_KEEP_DAYS (Celery beat does this "
        "hourly; run it from cron where beat does not run)."
    )

    def handle(self, *args, **options):
        expired = exports_expire()
        keep = settings.STUDIO["EXPORT_KEEP_DAYS"]
        self.stdout.write(
            f"Deleted the archives of {len(expired)} export{'s' if len(expired) != 1 else ''} "
            f"older than {keep} days."
            if keep > 0
            else "Exports are kept for ever (STUDIO_EXPORT_KEEP_DAYS=0)."
        )
