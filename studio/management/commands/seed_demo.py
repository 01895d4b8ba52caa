from django.core.management.base import BaseCommand

from studio.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo user and demo project (real photos + generated scenes), once."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-studio")
        parser.add_argument("--scenes", type=int, default=90, help="Generated scenes to ingest.")

    def handle(self, *args, username, password, scenes, **options):
        project, created = seed_demo(username=username, password=password, scenes=scenes)
        verb = "Created" if created else "Found"
        self.stdout.write(
            self.style.SUCCESS(f"{verb} demo project '{project.name}' (/p/{project.slug}/)")
        )
