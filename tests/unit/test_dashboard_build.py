"""The built dashboard (make ui): a strict CSP can serve it, it fetches nothing from elsewhere,
and the first page stays within its size budget."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from tests.plugins.browser import build_dashboard

pytestmark = pytest.mark.unit
DIST = Path(__file__).resolve().parents[2] / "exocorp" / "api_gateway" / "ui_dist"


@pytest.fixture(scope="module")
def index_html() -> str:
    build_dashboard()
    return (DIST / "index.html").read_text()


def test_no_inline_script_and_only_own_assets(index_html: str) -> None:
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", index_html, re.S)
    assert scripts
    for attributes, body in scripts:
        assert body.strip() == ""
        assert re.search(r'src="/assets/[\w.-]+\.js"', attributes)
    assert "style=" not in index_html
    assert not re.search(r'(src|href)="(https?:)?//', index_html)


def test_assets_fetch_nothing_from_another_origin() -> None:
    build_dashboard()
    for asset in (DIST / "assets").iterdir():
        text = asset.read_text(errors="replace")
        # The only absolute URLs allowed are XML namespaces and documentation links in strings
        # the browser never fetches; imports, fonts and stylesheets are all relative.
        assert not re.search(r"""(import\s*\(?\s*["']https?:|url\(\s*["']?https?:|@import)""",
                             text), asset.name


def test_first_page_is_under_150_kib_compressed(index_html: str) -> None:
    assets = re.findall(r'(?:src|href)="/(assets/[^"]+)"', index_html)
    compressed = sum(len(gzip.compress((DIST / a).read_bytes(), 9)) for a in assets)
    assert 0 < compressed < 150 * 1024
