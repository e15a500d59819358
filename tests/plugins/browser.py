"""Real Chromium (Debian's package) driven by Playwright against the dev platform's gateway,
which serves the dashboard built from ui/ (built here if missing; the build is cached by
content). Screenshots go to $EXOCORP_UI_SCREENSHOTS (docs/ui to refresh the committed ones)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from exocorp.testing.dev import DevPlatform
from tests.plugins.platform import quiet_dev_platform

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE = ROOT / "ui" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to the end on a thread of its own: Playwright's sync API keeps an event
    loop running on the test's thread, where asyncio.run is refused."""
    box: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            box.append(asyncio.run(make()))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return box[0]


def build_dashboard() -> None:
    subprocess.run(["bash", str(ROOT / "hack" / "build-ui.sh")], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def dashboard_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevPlatform]:
    """The whole platform (control plane, operator, gateway serving the dashboard)."""
    build_dashboard()
    with quiet_dev_platform(tmp_path_factory, "ui") as platform:
        yield platform


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def base_url(platform: DevPlatform) -> str:
    assert platform.gateway is not None
    return platform.gateway.url


def new_context(browser: Browser, platform: DevPlatform, **options: Any) -> BrowserContext:
    """A browser profile of its own (cookies, storage) on ``platform``'s dashboard, at desktop
    size; ``options`` go to Playwright."""
    return browser.new_context(base_url=base_url(platform), viewport=DESKTOP, **options)


@pytest.fixture
def context(browser: Browser, dashboard_platform: DevPlatform) -> Iterator[BrowserContext]:
    ctx = new_context(browser, dashboard_platform)
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def screenshot(page: Page, name: str) -> None:
    """Save the page at desktop and phone width (the viewport is restored afterwards)."""
    target = Path(os.environ.get("EXOCORP_UI_SCREENSHOTS", "")) if os.environ.get(
        "EXOCORP_UI_SCREENSHOTS") else None
    if target is None:
        return
    target = target if target.is_absolute() else ROOT / target
    target.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or DESKTOP
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.wait_for_timeout(150)
        page.screenshot(path=str(target / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(size)


def axe_violations(page: Page) -> list[dict[str, object]]:
    """Serious and critical axe-core findings on the current page (the context must bypass CSP
    for the injected script)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    assert isinstance(result, list)
    return result
