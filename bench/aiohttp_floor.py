"""The floor under any aiohttp service on this machine: an app with no middleware answering
``GET /healthz`` with a constant 15-byte JSON body, nothing read or computed. bench/gateway.py
runs it beside the gateway and drives it with the same generator, so a cached read's latency
can be set against what aiohttp itself takes to answer anything.

Run: uv run python bench/aiohttp_floor.py PORT
"""

from __future__ import annotations

import sys

from aiohttp import web

_BODY = b'{"status":"ok"}'


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=_BODY, content_type="application/json")


def main() -> None:
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
