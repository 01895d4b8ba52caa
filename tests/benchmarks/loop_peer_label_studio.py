"""Set up and audit Label Studio for the annotator-loop benchmark (run by Label Studio's Python).

``var/peers/label-studio/bin/python tests/benchmarks/loop_peer_label_studio.py seed N``
migrates the database Label Studio's environment names and makes an organisation (legacy
API tokens on, as scripts use them), a lead and N annotators, each a member with a token;
it prints the tokens as JSON. The project and its tasks are then made through the API, as
a user would (``test_annotator_loop.py``). ``... audit PROJECT`` prints the tasks annotated
more than once. Nothing of Studio is imported here: this runs in Label Studio's venv.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _setup() -> None:
    import label_studio

    sys.path.insert(0, str(Path(label_studio.__file__).parent))  # as label-studio start does
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings.label_studio")
    import django

    django.setup()


def seed(annotators: int) -> dict:
    from django.core.management import call_command
    from organizations.functions import create_organization
    from users.models import User

    call_command("migrate", verbosity=0)
    lead = User.objects.create_user(email="lead@loop.test", password="loop-lead-password")
    org = create_organization(title="Loop", created_by=lead, legacy_api_tokens_enabled=True)
    lead.active_organization = org
    lead.save(update_fields=["active_organization"])
    tokens = []
    for n in range(annotators):
        user = User.objects.create_user(email=f"annotator-{n:03d}@loop.test", password="x" * 12)
        org.add_user(user)
        user.active_organization = org
        user.save(update_fields=["active_organization"])
        tokens.append(user.auth_token.key)
    return {"lead": lead.auth_token.key, "tokens": tokens}


def audit(project: int) -> dict:
    from django.db.models import Count
    from tasks.models import Annotation

    per_task = (
        Annotation.objects.filter(project_id=project, was_cancelled=False)
        .values("task_id")
        .annotate(n=Count("id"))
    )
    return {
        "annotations": Annotation.objects.filter(project_id=project).count(),
        "tasks_annotated_twice": per_task.filter(n__gt=1).count(),
    }


if __name__ == "__main__":
    _setup()
    action, arg = sys.argv[1], int(sys.argv[2])
    print(json.dumps(seed(arg) if action == "seed" else audit(arg)))
