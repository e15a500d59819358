"""The dashboard's files: the build of ``ui/`` (``make ui``) in ``exocorp/api_gateway/ui_dist/``,
served at ``/`` by the gateway itself, so the page and the API share one origin (the session
cookie, the Origin check and ``connect-src 'self'`` need nothing more).

- ``/assets/*``: Vite's content-hashed files, ``Cache-Control: public, max-age=31536000,
  immutable`` (a new build has new names);
- ``index.html`` at ``/`` and at the dashboard's own paths (``/company/*``, ``/admin*``,
  ``/login``, ``/signup``, ``/account*``; the client-side router takes over), ``no-cache`` so a
  new build is picked up at once;
- other files at the top of the build (``favicon.svg``...): ``no-cache``;
- no build: ``/`` and the dashboard paths answer 503 with a one-line page saying how to build.

The directory is read at each request, so ``make ui`` while the gateway runs needs no restart.
Headers every answer carries (the CSP of HTML pages among them) are set by
``middleware.edge_middleware``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Final

from aiohttp import web

from exocorp.api_gateway.errors import not_found
from exocorp.api_gateway.keys import SETTINGS

__all__ = ["DEFAULT_DIST", "IMMUTABLE", "SPA_PATHS", "UI_ROUTES", "install_ui"]

DEFAULT_DIST: Final = Path(__file__).resolve().parent / "ui_dist"
"""Where ``make ui`` writes the build (gitignored; the wheel and the image carry it)."""
IMMUTABLE: Final = "public, max-age=31536000, immutable"
SPA_PATHS: Final = ("/", "/login", "/signup", "/account", "/account/{tail:.*}", "/admin",
                    "/admin/{tail:.*}", "/company/{tail:.*}")
"""The dashboard's own routes: each answers index.html."""
_ASSETS = "/assets/{name}"
_TOP_FILE = r"/{name:[A-Za-z0-9][A-Za-z0-9._-]*\.[A-Za-z0-9]+}"
UI_ROUTES: Final = tuple(re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)
                         for path in (*SPA_PATHS, _ASSETS, _TOP_FILE))
"""Canonical paths of the routes above: pages and files, not API (the OpenAPI document leaves
them out)."""
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NOT_BUILT = ("<!doctype html><title>Dashboard not built</title><p>The dashboard is not built: "
              "run <code>make ui</code> (it builds <code>ui/</code> into {dist}), then reload. "
              "The API is up: see <a href=\"/api/docs\">/api/docs</a>.</p>\n")


def _dist(request: web.Request) -> Path:
    return request.app[SETTINGS].ui_dist_dir or DEFAULT_DIST


def _file(directory: Path, name: str) -> Path | None:
    """``directory/name`` if it is a plain file there (no traversal, no dot files)."""
    if not _FILE_NAME.fullmatch(name) or name.startswith("."):
        return None
    path = directory / name
    return path if path.is_file() else None


async def index(request: web.Request) -> web.StreamResponse:
    dist = _dist(request)
    page = _file(dist, "index.html")
    if page is None:
        return web.Response(status=503, content_type="text/html", charset="utf-8",
                            text=_NOT_BUILT.format(dist=html.escape(str(dist))),
                            headers={"Cache-Control": "no-store", "Retry-After": "60"})
    return web.FileResponse(page, headers={"Cache-Control": "no-cache",
                                           "Content-Type": "text/html; charset=utf-8"})


async def asset(request: web.Request) -> web.StreamResponse:
    path = _file(_dist(request) / "assets", request.match_info["name"])
    if path is None:
        raise not_found("no such dashboard asset (a newer build has replaced it: reload)")
    return web.FileResponse(path, headers={"Cache-Control": IMMUTABLE})


async def top_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "index.html":
        return await index(request)
    path = _file(_dist(request), name)
    if path is None:
        raise not_found(f"no such file: /{name}")
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


def install_ui(app: web.Application) -> None:
    """Register the dashboard's routes; after every API route, so none is shadowed."""
    for path in SPA_PATHS:
        app.router.add_get(path, index)
    app.router.add_get(_ASSETS, asset)
    app.router.add_get(_TOP_FILE, top_file)
