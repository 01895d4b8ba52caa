"""Password guessing is limited: the token endpoint, the sign-in form and the admin lock a
username out for one address after STUDIO_LOGIN_FAILURE_LIMIT failures (django-axes)."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import make_user

LIMIT = 3
TOKEN = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


@pytest.fixture
def alice(db):
    user = make_user("alice")
    user.set_password("right-horse-battery")
    user.is_staff = True
    user.save()
    return user


def _token(client, password, ip="10.0.0.1"):
    return client.post(
        TOKEN, {"username": "alice", "password": password}, format="json", REMOTE_ADDR=ip
    )


def test_token_endpoint_locks_out_after_the_limit_with_the_api_error_shape(alice):
    client = APIClient()
    for _ in range(LIMIT - 1):
        assert _token(client, "wrong").status_code == 400
    r = _token(client, "wrong")
    assert r.status_code == 429
    body = r.json()
    assert body["error"]["code"] == "locked_out"
    assert "Too many failed sign-in attempts" in body["error"]["message"]
    assert body["error"]["details"] == {"retry_after_seconds": 15 * 60}
    assert r["Retry-After"] == str(15 * 60)
    # Locked out: even the right password is refused, and says nothing about it.
    r = _token(client, "right-horse-battery")
    assert r.status_code == 429 and "token" not in r.json()


def test_lockout_is_per_address_and_a_success_resets_the_count(alice):
    client = APIClient()
    for _ in range(LIMIT):
        _token(client, "wrong")
    assert _token(client, "right-horse-battery", ip="10.0.0.2").status_code == 200
    for _ in range(LIMIT - 1):
        _token(client, "wrong", ip="10.0.0.3")
    assert _token(client, "right-horse-battery", ip="10.0.0.3").status_code == 200
    for _ in range(LIMIT - 1):  # the success started the count again
        assert _token(client, "wrong", ip="10.0.0.3").status_code == 400


def test_lockout_ends_after_the_cool_off(alice, settings):
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.utils import timezone

    client = APIClient()
    for _ in range(LIMIT):
        _token(client, "wrong")
    assert _token(client, "right-horse-battery").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert _token(client, "right-horse-battery").status_code == 200


def test_sign_in_form_shows_a_readable_lockout_page(alice):
    client = Client(REMOTE_ADDR="10.0.0.9")
    for _ in range(LIMIT - 1):
        r = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
        assert r.status_code == 200 and b"Please enter a correct username" in r.content
    r = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert r.status_code == 429
    page = r.content.decode()
    assert "Too many failed sign-ins" in page and "Try again in 15 minutes" in page
    r = client.post("/accounts/login/", {"username": "alice", "password": "right-horse-battery"})
    assert r.status_code == 429
    assert "_auth_user_id" not in client.session


def test_admin_sign_in_is_throttled_too(alice):
    client = Client(REMOTE_ADDR="10.0.0.10")
    for _ in range(LIMIT):
        r = client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    assert r.status_code == 429
    assert b"Too many failed sign-ins" in r.content


def test_forwarded_address_counts_only_behind_a_trusted_proxy(alice, settings):
    client = APIClient()
    # No trusted proxy: a client cannot dodge the lockout by inventing X-Forwarded-For.
    for n in range(LIMIT):
        r = client.post(TOKEN, {"username": "alice", "password": "wrong"}, format="json",
                        HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")  # fmt: skip
    assert r.status_code == 429
    settings.STUDIO = {**settings.STUDIO, "TRUSTED_PROXIES": 1}
    r = client.post(TOKEN, {"username": "alice", "password": "right-horse-battery"},
                    format="json", HTTP_X_FORWARDED_FOR="198.51.100.7")  # fmt: skip
    assert r.status_code == 200, r.content
