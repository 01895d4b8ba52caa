from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from tests.factories import make_dataset, make_project, make_user


def pytest_configure(config):
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        # A broker folder of this run's own: a `make demo` running beside the tests shares
        # var/broker, and its worker would take the tests' jobs (and the tests' its).
        folder = settings.VAR_DIR / f"test-broker-{os.getpid()}"
        settings.CELERY_BROKER_FOLDER = folder
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
        }
        os.environ["STUDIO_BROKER_DIR"] = str(folder)  # for the worker processes tests start
        from studio.celery import app

        app.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS

    # Password hashing is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    """Give every test its own media folder, so file assertions see only its files."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def lead(db):
    return make_user("lead")


@pytest.fixture
def team(db, lead):
    """A project with one user per role, plus an outsider with a project of their own."""
    users = {
        "reviewer": make_user("reviewer"),
        "annotator": make_user("annotator"),
        "viewer": make_user("viewer"),
    }
    project = make_project(lead, "Team project", **users)
    outsider = make_user("outsider")
    other = make_project(outsider, "Outsider project")
    return {"project": project, "lead": lead, **users, "outsider": outsider, "other": other}


@pytest.fixture
def dataset(team):
    return make_dataset(team["project"], team["lead"])


@pytest.fixture
def worker(transactional_db, tmp_path):
    """A real `celery worker -B` process on the test database and the configured broker."""
    from tests.worker import start_worker

    w = start_worker(tmp_path)
    yield w
    w.stop()


@pytest.fixture
def api():
    def client_for(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for
