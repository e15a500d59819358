"""Measure the dashboard in Chromium against the dev platform (control plane, operator, gateway):

- fleet page with 1,000 exocorps in one account: time from navigation to the first page of rows
  on screen and to a search's result (median of 5), against the same page with 1 exocorp;
- the compressed (gzip -9) JavaScript and CSS that the first page loads;
- phase change to screen: a status write on the Exocorp object (operator stopped, so only these
  writes happen) until the detail page shows it, p50/p99 over 50 changes, against the same
  change read by a plain client of the SSE stream in the same run;
- signup to Running in the browser (signup, credential, create, provision), against the same
  steps over the REST API alone.

Run: uv run python bench/ui.py   (writes bench/results/ui.json; needs the control-plane binaries
and Debian's chromium)
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from playwright.sync_api import Page, sync_playwright

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.testing import samples
from exocorp.testing.dev import DevPlatform

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.plugins.browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    build_dashboard,
    in_thread,
)

PASSWORD = "bench password 123"  # noqa: S105 - a throwaway local account
DIST = ROOT / "exocorp" / "api_gateway" / "ui_dist"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bundle_bytes() -> dict[str, int]:
    html = (DIST / "index.html").read_text()
    assets = re.findall(r'(?:src|href)="/(assets/[^"]+)"', html)
    raw = sum((DIST / a).stat().st_size for a in assets)
    gz = sum(len(gzip.compress((DIST / a).read_bytes(), 9)) for a in assets)
    return {"first_page_assets": len(assets), "raw_bytes": raw, "gzip_bytes": gz}


async def api_account(base: str, email: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post("/api/auth/signup", json={"email": email, "password": PASSWORD}) as resp:
        assert resp.status == 201, await resp.text()
    return http


async def seed_fleet(base: str, email: str, n: int) -> list[str]:
    http = await api_account(base, email)
    slugs = [f"fleet-{i:04d}" for i in range(n)]
    try:
        async def make(slug: str) -> None:
            async with http.post("/api/registry/companies",
                                 json={"slug": slug, "displayName": f"Fleet {slug}"}) as resp:
                assert resp.status == 201, await resp.text()
        for start in range(0, n, 20):
            await asyncio.gather(*(make(s) for s in slugs[start:start + 20]))
    finally:
        await http.close()
    return slugs


async def api_signup_to_running(base: str) -> float:
    t0 = time.monotonic()
    http = await api_account(base, f"api-{uuid.uuid4().hex[:6]}@example.com")
    slug = f"api-{uuid.uuid4().hex[:6]}"
    try:
        for path, body in (("/api/registry/provider-secrets",
                            {"provider": "anthropic", "name": "main", "value": "sk-bench"}),
                           ("/api/registry/companies", {"slug": slug, "displayName": "API"})):
            async with http.post(path, json=body) as resp:
                assert resp.status in (200, 201), await resp.text()
        async with http.get("/api/registry/company-releases/current") as resp:
            version = (await resp.json())["release"]["spec"]["version"]
        async with http.post(f"/api/registry/companies/{slug}/draft", json={"draft": {
                "channel": "stable", "version": version, "config": {"agents": [
                    {"name": "ceo", "role": "Chief executive", "provider": "anthropic",
                     "model": "default"}]}}}) as resp:
            assert resp.status == 201, await resp.text()
        async with http.post(f"/api/registry/companies/{slug}/provision", json={}) as resp:
            assert resp.status == 202, await resp.text()
        while True:
            async with http.get(f"/api/registry/companies/{slug}") as resp:
                if (await resp.json())["phase"] == "Running":
                    return time.monotonic() - t0
            await asyncio.sleep(0.1)
    finally:
        await http.close()


def browser_signup_to_running(page: Page) -> float:
    t0 = time.monotonic()
    page.goto("/signup")
    page.get_by_label("E-mail").fill(f"ui-{uuid.uuid4().hex[:6]}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_label("I have saved my recovery kit").check()
    page.get_by_role("button", name="Continue to my exocorps").click()
    page.get_by_role("link", name="Add a provider credential").click()
    page.get_by_role("button", name="Add credential").click()
    page.get_by_role("dialog").get_by_label("Value").fill("sk-bench")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    page.get_by_role("cell", name="main", exact=True).wait_for()
    page.get_by_role("link", name="Exocorps").click()
    page.get_by_role("button", name="Create exocorp").first.click()
    page.get_by_role("dialog").get_by_label("Name").fill(f"Bench {uuid.uuid4().hex[:4]}")
    page.get_by_role("dialog").get_by_role("button", name="Create").click()
    page.locator("button[data-action=provision]").click()
    page.wait_for_function(
        "document.querySelector('.hero .badge')?.textContent === 'Running'", timeout=300_000)
    return time.monotonic() - t0


def fleet_times(page: Page, rows: int, search: bool = True) -> tuple[float, float]:
    """(ms from navigation start to the first rows on screen, ms for a search to show)."""
    page.goto("/", wait_until="commit")
    page.wait_for_function(f"document.querySelectorAll('tr[data-company]').length >= {rows}",
                           polling="raf", timeout=60_000)
    shown = float(page.evaluate("performance.now()"))
    if not search:
        return shown, 0.0
    searched = float(page.evaluate("""() => new Promise(done => {
        const input = document.querySelector('input[type=search]');
        const t0 = performance.now();
        input.value = 'fleet-0999';
        input.dispatchEvent(new Event('input', {bubbles: true}));
        const check = () => document.querySelectorAll('tr[data-company]').length === 1
            ? done(performance.now() - t0) : requestAnimationFrame(check);
        requestAnimationFrame(check);
    })"""))
    return shown, searched


def phase_latencies(page: Page, platform: DevPlatform, base: str, slug: str,
                    changes: int) -> tuple[list[float], list[float]]:
    """Browser and plain-SSE-client latencies (ms) of `changes` status writes."""
    assert platform.operator is not None
    platform.operator.stop()  # only our writes change the object now
    page.goto(f"/company/{slug}")
    page.locator(".hero .live", has_text="Live").wait_for()
    page.evaluate("""() => {
        window.__seen = [];
        const badge = () => document.querySelector('.hero .badge');
        new MutationObserver(() => window.__seen.push([badge().textContent, Date.now()]))
            .observe(document.querySelector('.hero'), {subtree: true, childList: true,
                                                        characterData: true});
    }""")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    stream_seen: list[tuple[str, float]] = []
    stop = threading.Event()

    async def stream() -> None:
        async with aiohttp.ClientSession(cookies=cookies) as http, http.get(
                f"{base}/api/registry/companies/{slug}/events") as resp:
            async for line in resp.content:
                if line.startswith(b"data:"):
                    stream_seen.append((json.loads(line[5:])["phase"], time.time() * 1000))
                if stop.is_set():
                    return

    reader = threading.Thread(target=lambda: asyncio.run(stream()), daemon=True)
    reader.start()
    browser_ms: list[float] = []
    stream_ms: list[float] = []

    stamp = "2026-01-01T00:00:00Z"

    async def provisioned() -> int:
        """The seeded Draft made a provisioned exocorp (the displayed phase is derived from
        spec and conditions, so a Draft shows Draft whatever its status says)."""
        async with await Kube.connect(platform.plane.kubeconfig) as kube:
            body = await kube.patch(r.EXOCORPS, slug, {"spec": {
                "provisioned": True, "release": {"channel": "stable", "version": "1.0.0"},
                "config": samples.draft()["config"]}})
            return int(body["metadata"]["generation"])

    generation = in_thread(provisioned)
    statuses = {
        "Failed": {"conditions": [{"type": "Stalled", "status": "True", "reason": "Bench",
                                   "message": "", "lastTransitionTime": stamp}]},
        "Running": {"observedGeneration": generation,
                    "lastSuccessfulRevision": {"name": f"{slug}-bench", "number": 1},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "Bench",
                                    "message": "", "lastTransitionTime": stamp,
                                    "observedGeneration": generation}]},
    }

    async def write(phase: str) -> float:
        """The status write that shows ``phase``; the time just before it is sent (ms)."""
        async with await Kube.connect(platform.plane.kubeconfig) as kube:
            start = time.time() * 1000
            await kube.patch(r.EXOCORPS, slug, {"status": statuses[phase]},
                             subresource="status")
            return start

    for i in range(changes):
        phase = "Failed" if i % 2 == 0 else "Running"
        start = in_thread(functools.partial(write, phase))  # the sync API owns this loop
        for _ in range(500):
            seen = page.evaluate("window.__seen")
            hit = next((t for p, t in seen if p == phase and t >= start), None)
            got = next((t for p, t in stream_seen if p == phase and t >= start), None)
            if hit is not None and got is not None:
                browser_ms.append(hit - start)
                stream_ms.append(got - start)
                break
            page.wait_for_timeout(10)
        else:
            raise AssertionError(f"change {i} to {phase} never shown")
    stop.set()
    return browser_ms, stream_ms


def main() -> None:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    build_dashboard()
    result: dict[str, Any] = {"bundle": bundle_bytes()}
    with tempfile.TemporaryDirectory() as tmp:
        platform = DevPlatform(Path(tmp), say=lambda line: None)
        platform.start()
        try:
            assert platform.gateway is not None
            base = platform.gateway.url
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                ctx = browser.new_context(base_url=base, viewport=DESKTOP, bypass_csp=True)
                ctx.set_default_timeout(60_000)
                page = ctx.new_page()
                ui_s = browser_signup_to_running(page)
                api_s = in_thread(lambda: api_signup_to_running(base))
                result["signup_to_running"] = {
                    "browser_seconds": round(ui_s, 1), "api_only_seconds": round(api_s, 1),
                    "ratio": round(ui_s / api_s, 2)}
                print(json.dumps(result, indent=2), file=sys.stderr)

                one = [fleet_times(page, 1, search=False) for _ in range(5)]
                ctx.close()
                email = f"fleet-{uuid.uuid4().hex[:6]}@example.com"
                t0 = time.monotonic()
                slugs = in_thread(lambda: seed_fleet(base, email, 1000))
                seeded = time.monotonic() - t0
                ctx = browser.new_context(base_url=base, viewport=DESKTOP, bypass_csp=True)
                ctx.set_default_timeout(60_000)
                page = ctx.new_page()
                page.goto("/login")
                page.get_by_label("E-mail").fill(email)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.get_by_role("heading", name="Your exocorps").wait_for()
                many = [fleet_times(page, 50) for _ in range(5)]
                shown_1 = statistics.median(t for t, _ in one)
                shown_1000 = statistics.median(t for t, _ in many)
                result["fleet"] = {
                    "exocorps": len(slugs), "seed_seconds": round(seeded, 1),
                    "interactive_ms_1000": round(shown_1000), "interactive_ms_1": round(shown_1),
                    "ratio": round(shown_1000 / shown_1, 2),
                    "search_ms_1000": round(statistics.median(s for _, s in many), 1),
                    "runs": 5}
                print(json.dumps(result, indent=2), file=sys.stderr)

                browser_ms, stream_ms = phase_latencies(page, platform, base, slugs[0], 50)
                result["phase_change_to_screen"] = {
                    "changes": len(browser_ms),
                    "browser_p50_ms": round(percentile(browser_ms, 0.5), 1),
                    "browser_p99_ms": round(percentile(browser_ms, 0.99), 1),
                    "sse_client_p50_ms": round(percentile(stream_ms, 0.5), 1),
                    "sse_client_p99_ms": round(percentile(stream_ms, 0.99), 1),
                    "ratio_p99": round(percentile(browser_ms, 0.99)
                                       / max(percentile(stream_ms, 0.99), 0.1), 2)}
                browser.close()
        finally:
            platform.stop()
    result["command"] = "uv run python bench/ui.py"
    out = ROOT / "bench" / "results" / "ui.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
