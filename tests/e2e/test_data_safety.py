"""Browser: removing a member and deleting a label class ask first, on a page without script."""

from __future__ import annotations

import pytest

from annotation.models import LabelClass
from annotation.services.labels import label_class_create
from studio.models import Membership
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page, url, username):
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")


def test_member_removal_and_class_deletion_ask_first(live_server, browser, team):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    slug = team["project"].slug
    label_class_create(actor=team["lead"], project=team["project"], name="car", kind="box")
    page = browser.new_page(viewport={"width": 1100, "height": 700})
    _sign_in(page, live_server.url, "lead")

    page.goto(f"{live_server.url}/p/{slug}/members/")
    assert page.locator("#id_role").input_value() == "viewer"  # least privilege by default
    member = Membership.objects.get(project=team["project"], user=team["annotator"])
    page.locator(f"form[action$='/members/{member.pk}/'] button[value=remove]").click()
    page.get_by_text("Remove annotator (annotator) from the project?").wait_for()
    assert Membership.objects.filter(project=team["project"], user=team["annotator"]).exists()
    page.screenshot(path=str(SCREENSHOTS / "member-remove-confirm.png"), full_page=True)
    page.locator("#confirm button[type=submit]").click()
    page.get_by_text("annotator removed").wait_for()
    assert not Membership.objects.filter(project=team["project"], user=team["annotator"]).exists()

    page.goto(f"{live_server.url}/p/{slug}/labels/")
    page.get_by_role("button", name="Delete…").click()
    page.get_by_text("No annotation uses it").wait_for()
    assert LabelClass.objects.filter(name="car").exists()
    page.screenshot(path=str(SCREENSHOTS / "label-delete-confirm.png"), full_page=True)
    page.get_by_role("link", name="Cancel").click()
    page.get_by_role("button", name="Delete…").click()
    page.locator("#confirm button[type=submit]").click()
    page.get_by_text("Deleted 'car'").wait_for()
    assert not LabelClass.objects.filter(name="car").exists()
