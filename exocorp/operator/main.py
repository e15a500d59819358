"""`exocorp operator`: run the kopf operator with its metrics and health endpoint."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import kopf
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from exocorp import names
from exocorp.k8s import ApiError
from exocorp.k8s.client import load_configuration
from exocorp.operator import handlers, metrics
from exocorp.operator.peering import PeeringGate, own_identity
from exocorp.operator.settings import OperatorSettings

log = logging.getLogger(__name__)


def kopf_settings(peering: str | None, priority: int) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # The reconciler owns the Exocorp finalizer (names.FINALIZER) and the destroy. With no
    # kopf change handler, kopf writes no diff-base annotation on every spec change and adds
    # no finalizer of its own; its name must differ from ours, or kopf would remove ours as
    # one "no handler requires".
    settings.persistence.finalizer = f"{names.GROUP}/kopf-unused"
    # Keep kopf's bookkeeping in annotations: our status schema is structural and strict.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.peering.priority = priority
    if peering:
        settings.peering.name = peering
        settings.peering.mandatory = True
        settings.peering.clusterwide = True
    else:
        settings.peering.standalone = True
    return settings


# How long /readyz waits for the API server before it says not ready.
READY_TIMEOUT_SECONDS = 3.0


async def serve_metrics(host: str, port: int, state: handlers.Operator) -> web.AppRunner:
    """/metrics, /healthz and /readyz on one port.

    /healthz (liveness): the work queue's workers run; when they died, only a restart helps.
    /readyz (readiness): started, workers running, and the API server answers; an unreachable
    API server makes the pod unready without restarting it (a restart would not help).
    """

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.REGISTRY),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        reconciler = getattr(state, "reconciler", None)
        alive = reconciler is not None and reconciler.queue.alive()
        return web.json_response({"status": "ok" if alive else "starting"},
                                 status=200 if alive else 503)

    async def readyz(request: web.Request) -> web.Response:
        reconciler = getattr(state, "reconciler", None)
        kube = getattr(state, "kube", None)
        if reconciler is None or kube is None or not reconciler.queue.alive():
            return web.json_response({"status": "starting"}, status=503)
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                await kube.request("GET", "/version")
        except (ApiError, OSError, TimeoutError) as error:
            log.info("not ready: the API server does not answer: %s", error)
            return web.json_response({"status": "api-server-unreachable"}, status=503)
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def connection_info(kubeconfig: str | None) -> kopf.ConnectionInfo:
    config = await load_configuration(kubeconfig)
    header: str | None = await config.get_api_key_with_prefix("BearerToken")
    token = header.split(" ", 1)[-1] if header else None
    return kopf.ConnectionInfo(
        server=str(config.host), ca_path=config.ssl_ca_cert, insecure=not config.verify_ssl,
        scheme="Bearer" if token else None, token=token,
        certificate_path=config.cert_file, private_key_path=config.key_file,
    )


def run(settings: OperatorSettings, *, kubeconfig: str | None, metrics_host: str,
        metrics_port: int,
        peering: str | None, priority: int = 0) -> None:
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # for our own client, created at start-up
    registry = kopf.OperatorRegistry()
    handlers.register(registry, settings)
    runner: dict[str, web.AppRunner] = {}

    # A custom registry has no default login: give kopf the same connection as our client.
    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        return await connection_info(kubeconfig)

    @kopf.on.startup(registry=registry)
    async def start_metrics(memo: handlers.Operator, **_: Any) -> None:
        runner["metrics"] = await serve_metrics(metrics_host, metrics_port, memo)

    @kopf.on.cleanup(registry=registry)
    async def stop_metrics(**_: Any) -> None:
        if "metrics" in runner:
            await runner["metrics"].cleanup()

    identity = own_identity()
    if peering:
        # Registered after handlers.register, so the work queue exists when this runs; the
        # handlers' cleanup cancels it before it closes the client the gate reads with.
        @kopf.on.startup(registry=registry)
        async def start_peering_gate(memo: handlers.Operator, **_: Any) -> None:
            queue = memo.reconciler.queue
            checker = PeeringGate(memo.kube, peering, identity, priority, queue)
            queue.pause()  # until the first check says this replica is the active one
            memo.background.append(asyncio.create_task(checker.run(), name="peering-gate"))

    kopf.run(registry=registry, settings=kopf_settings(peering, priority), clusterwide=True,
             memo=handlers.Operator(),
             standalone=peering is None, peering_name=peering, priority=priority,
             identity=identity)  # type: ignore[arg-type]  # kopf's NewType of str, not exported

