"""Screenshots of the portal's pages for docs/screenshots/, taken from a running `make run`.

    .venv/bin/python scripts/screenshots.py [--base-url http://127.0.0.1:8000]

Signs in with the demo logins `make run` printed (var/demo_logins.json) in headless Chromium.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = {  # file name: (role, path)
    "exceptions.png": ("finance", "/exceptions/"),
    "exceptions-groups.png": ("finance", "/exceptions/groups/"),
    "exceptions-item.png": ("finance", "first-item"),
    "exceptions-auditor.png": ("auditor", "first-item"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    base = parser.parse_args().base_url
    logins = json.loads((ROOT / "var" / "demo_logins.json").read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=ARGS
        )
        for name, (role, path) in PAGES.items():
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/accounts/login/")
            page.fill("#id_username", f"demo_{role}")
            page.fill("#id_password", logins[f"demo_{role}"])
            page.click("button[type=submit]")
            page.wait_for_load_state()
            if path == "first-item":
                page.goto(f"{base}/exceptions/")
                page.click("#items tbody tr:first-child a")
            else:
                page.goto(f"{base}{path}")
            page.screenshot(path=str(OUT / name), full_page=True)
            print(f"{name}: {page.url}")
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
