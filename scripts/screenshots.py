"""Take screenshots of a running Studio (``make demo``) in headless chromium, for the docs.

Usage: .venv/bin/python scripts/screenshots.py [base-url] [out-dir]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
OUT = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/img")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{BASE}/accounts/login/")
        page.fill("#id_username", "demo")
        page.fill("#id_password", "demo-studio")
        page.click("main button[type=submit]")
        page.goto(f"{BASE}/p/demo/")
        page.screenshot(path=str(OUT / "project.png"), full_page=True)
        page.get_by_role("link", name="Generated scenes").click()
        page.fill("input[name='meta.lighting']", "dark")
        page.click("main form.filters button[type=submit]")
        page.wait_for_timeout(800)
        page.screenshot(path=str(OUT / "dataset.png"), full_page=False)
        page.goto(f"{BASE}/p/demo/")
        page.get_by_role("link", name="Sample photos").click()
        page.locator(".thumbs a").first.click()
        page.screenshot(path=str(OUT / "image.png"), full_page=False)
        browser.close()


if __name__ == "__main__":
    main()
