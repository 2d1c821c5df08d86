"""Screenshots of every portal page for docs/screenshots/, taken from a running `make run`.

    .venv/bin/python scripts/screenshots.py [--base-url http://127.0.0.1:8000] [--var-dir var]

Signs in with the demo logins `make run` printed (`<var dir>/demo_logins.json`; the var dir is
LEDGERBRIDGE_VAR_DIR when set, as for `make run`) in headless Chromium, 1280 pixels wide, and
saves each page whole as PNG.

The mapping pages need a draft to show a diff and a dry run: the demo mapping admin opens one
through the pages, as a person would, from the legal-entity set's newest version — "what if
LB-DE were dropped from November" — and leaves it a draft (never submitted). A second run
reuses it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

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
VIEWPORT = {"width": 1280, "height": 900}
DRAFT_DROPS = "LB-DE"
DRAFT_FROM = "2026-11-01"
DRY_RUN_PAYLOADS = 40
DRAFT_NOTES = "What dropping LB-DE from November would do (a screenshot draft: not for publishing)."


def first_item(page: Page, base: str) -> None:
    page.goto(f"{base}/exceptions/")
    page.click("#items tbody tr:first-child a")


def first_item_trace(page: Page, base: str) -> None:
    first_item(page, base)
    page.click("#full-trace")


def newest_version(page: Page, base: str, slug: str = "legal-entity") -> None:
    page.goto(f"{base}/mappings/")
    page.click(f"[data-set={slug}] tbody tr:first-child a")


def published_version(page: Page, base: str) -> None:
    page.goto(f"{base}/mappings/")
    page.click("[data-set=legal-entity] tr[data-status=published] a")


def screenshot_draft(page: Page, base: str) -> None:
    """The legal-entity draft the mapping shots show: the newest version if it is a draft,
    else a new draft from it without DRAFT_DROPS, planned from DRAFT_FROM."""
    newest_version(page, base)
    if page.locator("#version-status").get_attribute("data-status") == "draft":
        return
    page.click("button[value=new_draft]")
    page.locator(f"#entries tr[data-source='{DRAFT_DROPS}'] button[value=entry_delete]").click()
    page.fill("input[name=effective_from]", DRAFT_FROM)
    page.fill("textarea[name=notes]", DRAFT_NOTES)
    page.click("button[value=update]")


def draft_diff(page: Page, base: str) -> None:
    screenshot_draft(page, base)
    page.click("nav.subnav a:has-text('Compare with')")


def draft_dry_run(page: Page, base: str) -> None:
    screenshot_draft(page, base)
    # The last DRY_RUN_PAYLOADS payloads, so the page lists a screenful of records, not 200.
    page.fill("#dry-run input[name=limit]", str(DRY_RUN_PAYLOADS))
    page.click("#dry-run button[type=submit]")
    page.wait_for_selector("#dry-run-result")


def dashboards(page: Page, base: str) -> None:
    page.goto(f"{base}/dashboards/?board=finance")
    page.wait_for_selector("div.chart[data-ready=yes], #panel-leakage p.muted")


def path(to: str) -> Callable[[Page, str], None]:
    return lambda page, base: page.goto(f"{base}{to}")


# file name: (demo role signed in, or None for nobody; how to reach the page)
PAGES: dict[str, tuple[str | None, Callable[[Page, str], None]]] = {
    "sign-in.png": (None, path("/accounts/login/?next=/exceptions/")),
    "exceptions.png": ("finance", path("/exceptions/")),
    "exceptions-groups.png": ("finance", path("/exceptions/groups/")),
    "exceptions-item.png": ("finance", first_item),
    "exceptions-auditor.png": ("auditor", first_item),
    "trace.png": ("finance", first_item_trace),
    "mappings.png": ("mapping_admin", path("/mappings/")),
    "mappings-version.png": ("mapping_admin", published_version),
    "mappings-diff.png": ("mapping_admin", draft_diff),
    "mappings-dry-run.png": ("mapping_admin", draft_dry_run),
    "ownership.png": ("mapping_admin", path("/ownership/")),
    "runs.png": ("integration_ops", path("/runs/")),
    "dashboards.png": ("executive", dashboards),
    "reconciliation.png": ("finance", path("/reconciliation/")),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--var-dir", default=os.environ.get("LEDGERBRIDGE_VAR_DIR", str(ROOT / "var"))
    )
    parser.add_argument("--only", nargs="*", help="file names to take (default: every page)")
    options = parser.parse_args()
    base = options.base_url.rstrip("/")
    logins = json.loads((Path(options.var_dir) / "demo_logins.json").read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=ARGS
        )
        for name, (role, reach) in PAGES.items():
            if options.only and name not in options.only:
                continue
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            if role:
                page.goto(f"{base}/accounts/login/")
                page.fill("#id_username", f"demo_{role}")
                page.fill("#id_password", logins[f"demo_{role}"])
                page.click("button[type=submit]")
                page.wait_for_load_state()
            reach(page, base)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(OUT / name), full_page=True)
            print(f"{name}: {page.url}")
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
