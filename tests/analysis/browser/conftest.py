"""Fixtures of the results-browser tests: headless Chromium (Debian's package, driven by Playwright) and a page
opened from file:// with its console errors and every request it makes recorded, non-file requests refused."""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # report_helpers, shared with the report tests

CHROMIUM = os.environ.get("SMS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the browser tests (.ci/run installs Debian's chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable('playwright is not installed (pip install -c constraints.txt -e ".[test]")')
    if not Path(CHROMIUM).is_file():
        _unavailable(f"no Chromium binary at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@dataclass
class Watched:
    page: object
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def _route(route) -> None:
    if route.request.url.startswith(("file:", "data:")):
        route.continue_()
    else:
        route.abort()  # never reach the network; the failed load is also a console error


@pytest.fixture
def open_page(chromium):
    """open_page(path) → Watched: the page at ``path`` (file://), ready (its first view drawn)."""
    contexts = []

    def opener(path: Path, width: int = 1400, height: int = 900) -> Watched:
        context = chromium.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        context.route("**/*", _route)
        watched = Watched(context.new_page())
        watched.page.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
        watched.page.on("pageerror", lambda error: watched.errors.append(str(error)))
        watched.page.on("request", lambda request: watched.requests.append(request.url))
        watched.page.goto(Path(path).resolve().as_uri())
        watched.page.wait_for_selector("body[data-ready]", timeout=10_000)
        return watched

    yield opener
    for context in contexts:
        context.close()
