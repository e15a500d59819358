"""Server-sent event streams fed by the watch cache (the registry's ``.../events`` routes).

A stream subscribes to the Exocorp informer (``watch_cache.Subscription``: the informer only
records which objects changed, never waits for a reader), then renders each changed object's
current state and writes it as an event. Bounds, so no client can cost the gateway for ever:

- a slow reader: changes coalesce per object, at most ``stream_queue_limit`` objects wait, and a
  write that does not drain within ``stream_write_timeout`` seconds ends the stream;
- at most ``max_streams_per_session`` open streams per session (or agent token): 429 beyond;
- every ``stream_keepalive_seconds`` a ``: keepalive`` comment, and the caller's credentials and
  access are checked again (a logout or a lost membership ends the stream);
- a stream ends after ``stream_max_seconds`` (the client reconnects);
- when the gateway stops, every open stream ends at once (its clients reconnect to a replica, or
  to this one once it is back, and get the current state first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

from aiohttp import web

from exocorp.api_gateway.access import resolve_principal
from exocorp.api_gateway.errors import Problem
from exocorp.api_gateway.keys import CACHE, METRICS, PRINCIPAL, SETTINGS
from exocorp.api_gateway.principal import Principal
from exocorp.api_gateway.watch_cache import Subscription

__all__ = ["RETRY_MS", "DetailEvents", "Event", "Render", "StreamHub", "deleted", "install_streams",
           "serve_stream", "sse"]

log = logging.getLogger(__name__)

RETRY_MS: Final = 2000
"""How long EventSource clients wait before reconnecting (the ``retry:`` field)."""

Event = tuple[str, bytes]
"""An event's name and its ``data`` (one line of JSON)."""
Render = Callable[[str], Awaitable[tuple[list[Event], bool]]]
"""The events for one changed object, and whether they end the stream."""


def sse(event: str, data: bytes) -> bytes:
    """One event in the text/event-stream format (compact JSON holds no newline)."""
    assert b"\n" not in data
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def deleted(exocorp_id: str) -> Event:
    return "deleted", json.dumps({"id": exocorp_id}, separators=(",", ":")).encode()


class DetailEvents:
    """The events of a stream of one exocorp's detail (``first`` and ``render`` of
    :func:`serve_stream`): ``company`` with ``body()`` whenever it differs from the last one
    sent, and ``deleted``, which ends the stream, once ``body()`` is None (the exocorp is gone)."""

    def __init__(self, exocorp_id: str, body: Callable[[], Awaitable[bytes | None]]) -> None:
        self.exocorp_id = exocorp_id
        self._body = body
        self._sent = b""

    @property
    def started(self) -> bool:
        """A ``company`` event was sent."""
        return bool(self._sent)

    async def render(self, key: str) -> tuple[list[Event], bool]:
        body = await self._body()
        if body is None:
            return [deleted(self.exocorp_id)], True
        if body == self._sent:
            return [], False
        self._sent = body
        return [("company", body)], False

    async def first(self) -> list[Event]:
        return (await self.render(self.exocorp_id))[0]


class StreamHub:
    """The app's open streams: the per-session limit, and the signal that ends them all."""

    def __init__(self, max_per_session: int) -> None:
        self.max_per_session = max_per_session
        self.closing = asyncio.Event()
        self._open: dict[str, int] = {}

    @property
    def open(self) -> int:
        return sum(self._open.values())

    @contextlib.contextmanager
    def slot(self, principal: Principal) -> Iterator[None]:
        """Hold one of the caller's stream slots (429 ``too_many_streams`` when none is free)."""
        holder = (principal.session_token_hash or principal.client_id
                  or principal.user_id or "anonymous")
        if self._open.get(holder, 0) >= self.max_per_session:
            raise Problem(429, "too_many_streams",
                          f"at most {self.max_per_session} event streams may be open per "
                          "session; close one first", headers={"Retry-After": "5"})
        self._open[holder] = self._open.get(holder, 0) + 1
        try:
            yield
        finally:
            self._open[holder] -= 1
            if not self._open[holder]:
                del self._open[holder]


STREAMS: web.AppKey[StreamHub] = web.AppKey("exocorp.streams")
"""The open event streams (per-session limit; ended on shutdown)."""


def install_streams(app: web.Application) -> None:
    """The hub, and its closing on shutdown (before aiohttp waits for open handlers)."""
    app[STREAMS] = StreamHub(app[SETTINGS].max_streams_per_session)

    async def close_streams(app: web.Application) -> None:
        app[STREAMS].closing.set()

    app.on_shutdown.append(close_streams)


async def _reauthorise(request: web.Request, check: Callable[[], Awaitable[None]]) -> bool:
    """Resolve the caller again and re-run the route's access check: False ends the stream."""
    request[PRINCIPAL] = await resolve_principal(request, touch=False)
    try:
        await check()
    except Problem:
        return False
    return True


async def serve_stream(request: web.Request, *, key: str | None,
                       authorise: Callable[[], Awaitable[None]],
                       first: Callable[[], Awaitable[list[Event]]],
                       render: Render,
                       farewell: Callable[[], list[Event]] = list) -> web.StreamResponse:
    """Run one stream. ``authorise`` raises the route's Problem (401/404...) when the caller may
    not read; ``first`` gives the opening events; ``render(key)`` the events for a changed
    object and whether they are the last; ``farewell`` the last events when ``authorise`` fails
    later (e.g. ``deleted`` when the object is gone). ``key`` narrows the subscription to one
    object."""
    app = request.app
    settings = app[SETTINGS]
    hub = app[STREAMS]
    await authorise()
    principal = request[PRINCIPAL]
    with hub.slot(principal), \
            app[CACHE].exocorps.subscribe(key, limit=settings.stream_queue_limit) as changes:
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no"})
        await response.prepare(request)
        app[METRICS].streams_open.inc()
        try:
            await _pump(request, response, changes, hub, authorise, first, render, farewell)
        except (ConnectionResetError, TimeoutError):
            pass  # the client went away, or stopped reading: drop it
        finally:
            app[METRICS].streams_open.dec()
        return response


async def _pump(request: web.Request, response: web.StreamResponse, changes: Subscription,
                hub: StreamHub, authorise: Callable[[], Awaitable[None]],
                first: Callable[[], Awaitable[list[Event]]],
                render: Render, farewell: Callable[[], list[Event]]) -> None:
    settings = request.app[SETTINGS]
    timeout = settings.stream_write_timeout

    async def write(chunk: bytes) -> None:
        await asyncio.wait_for(response.write(chunk), timeout)

    await write(f"retry: {RETRY_MS}\n\n".encode() + b"".join(sse(*e) for e in await first()))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.stream_max_seconds
    closing = asyncio.ensure_future(hub.closing.wait())
    try:
        while not hub.closing.is_set():
            left = deadline - loop.time()
            if left <= 0:
                break  # the client reconnects, to this replica or another
            waiting = asyncio.ensure_future(
                changes.changes(min(settings.stream_keepalive_seconds, left)))
            await asyncio.wait({waiting, closing}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                waiting.cancel()
                break  # the gateway is stopping
            keys = waiting.result()
            if changes.overflowed:
                log.info("event stream dropped: its client fell too far behind")
                break
            if not await _reauthorise(request, authorise):
                await write(b"".join(sse(*e) for e in farewell()))
                break
            if not keys:
                if loop.time() < deadline:
                    await write(b": keepalive\n\n")
                continue
            chunks: list[bytes] = []
            last = False
            for key in keys:
                events, last = await render(key)
                chunks.extend(sse(*e) for e in events)
                if last:
                    break
            if chunks:
                await write(b"".join(chunks))
            if last:
                return
    finally:
        closing.cancel()
