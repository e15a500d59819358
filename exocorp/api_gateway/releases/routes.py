"""Published releases, from the watch cache: the current one per channel, and the catalog."""

from __future__ import annotations

from aiohttp import web

from exocorp.api_gateway.access import require_user
from exocorp.api_gateway.errors import Problem
from exocorp.api_gateway.keys import CACHE
from exocorp.api_gateway.routing import Auth, RouteTable, json_response, query_params
from exocorp.api_gateway.schemas import ChannelQuery, CurrentRelease, ReleaseCatalog, ReleaseView
from exocorp.model import Channel, ExocorpRelease, newest_release

routes = RouteTable("releases", "Published exocorp releases.")


def _view(release: ExocorpRelease) -> ReleaseView:
    return ReleaseView(name=release.metadata.name,
                       published_at=release.metadata.creation_timestamp,
                       status="withdrawn" if release.spec.blocked else "published",
                       spec=release.spec)


def _by_version(request: web.Request) -> dict[str, ExocorpRelease]:
    return {release.spec.version: release for release in request.app[CACHE].releases.values()}


@routes.get("/api/registry/company-releases/current", summary="Current release of a channel",
            auth=Auth.USER, query=ChannelQuery, response=CurrentRelease, errors=(404,))
async def current_release(request: web.Request) -> web.Response:
    """The newest release published on ``?channel=`` (default ``stable``), withdrawn releases
    skipped: what a new exocorp on that channel installs. 404 when the channel has none."""
    require_user(request)
    query = query_params(request, ChannelQuery)
    releases = _by_version(request)
    newest = newest_release([r.spec for r in releases.values()], query.channel)
    if newest is None:
        raise Problem(404, "release_not_found",
                      f"no release is published on {query.channel.value}")
    return json_response(CurrentRelease(channel=query.channel,
                                        release=_view(releases[newest.version])))


@routes.get("/api/registry/company-releases/catalog", summary="Release catalog", auth=Auth.USER,
            response=ReleaseCatalog)
async def release_catalog(request: web.Request) -> web.Response:
    """Every published release, newest first, with its channels, components, providers, update
    constraint and status (``published`` or ``withdrawn`` with the reason)."""
    require_user(request)
    releases = _by_version(request)
    specs = request.app[CACHE].release_specs()
    newest = {}
    for channel in Channel:
        found = newest_release(specs, channel)
        if found is not None:
            newest[channel.value] = found.version
    return json_response(ReleaseCatalog(
        releases=[_view(releases[spec.version]) for spec in specs if spec.version in releases],
        newest=newest))
