"""Status: what a pass reports (conditions, domains, release state, phase), the running-time
counters it accrues, and the status write (skipped when only volatile fields changed)."""

from __future__ import annotations

import time
from datetime import timedelta

from exocorp import names
from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.model import (
    ConditionStatus,
    ConditionType,
    DomainKind,
    DomainStatus,
    ExocorpReleaseSpec,
    Phase,
    Reason,
    ReleaseState,
    ReleaseStatus,
    RevisionOutcome,
    RoutingState,
    TlsState,
    derive_phase,
    format_timestamp,
    merge_patch_diff,
)
from exocorp.operator import events, health, metrics
from exocorp.operator.cache import ObjectCache
from exocorp.operator.reconcile_pass import Pass, parse_time
from exocorp.operator.settings import OperatorSettings
from exocorp.runtime import builders

# Fields that change on every pass; alone they do not justify a status write.
_VOLATILE = {"lastReconcileSeconds", "lastReconcileTime", "runningSeconds",
             "runningSecondsTotal", "runningSecondsAccruedAt"}
_ACCRUAL_FLUSH_SECONDS = 60


def draft_status(ctx: Pass, settings: OperatorSettings) -> None:
    hosts = builders.domains(ctx.exo, settings)
    ctx.status.domains = [DomainStatus(host=hosts[kind], kind=kind) for kind in DomainKind]
    for type_ in (ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED,
                  ConditionType.PAUSED, ConditionType.STALLED):
        ctx.condition(type_, ConditionStatus.FALSE, Reason.DRAFT, "not provisioned yet")
    ctx.condition(ConditionType.DOMAINS_ATTACHED, ConditionStatus.FALSE, Reason.DRAFT,
                  "domains reserved, attached at provisioning")


def accrue(ctx: Pass) -> None:
    """Add running time for the interval since the last accrual, at the readiness observed
    at its start. Whole seconds only; the remainder stays for the next pass, so the
    counters never lose or double-count a second across passes, crashes or restarts."""
    status = ctx.status
    since = parse_time(status.running_seconds_accrued_at)
    if since is None:
        status.running_seconds_accrued_at = format_timestamp(ctx.now)
        return
    elapsed = int((ctx.now - since).total_seconds())
    if elapsed <= 0:
        return
    running = dict(status.running_seconds)
    for component in status.components:
        if component.ready > 0:
            running[component.name] = running.get(component.name, 0) \
                + component.ready * elapsed
            status.running_seconds_total += component.ready * elapsed
    status.running_seconds = running
    status.running_seconds_accrued_at = format_timestamp(since + timedelta(seconds=elapsed))


def summarise(ctx: Pass, release: ExocorpReleaseSpec, observed: list[health.ComponentHealth],
              tls_ready: bool, cache: ObjectCache, settings: OperatorSettings) -> None:
    exo, status = ctx.exo, ctx.status
    ns = names.runtime_namespace(exo.metadata.name)
    all_ready = all(c.status.ready >= c.status.desired for c in observed)
    stalled = any(c.type == ConditionType.STALLED and c.status == ConditionStatus.TRUE
                  for c in status.conditions)
    if exo.spec.stopped:
        ctx.condition(ConditionType.READY, ConditionStatus.FALSE, Reason.STOPPED,
                      "stopped: every workload at zero, data kept")
    elif stalled:
        ctx.condition(ConditionType.READY, ConditionStatus.FALSE, "RolloutFailed",
                      "the last rollout failed")
    elif exo.spec.paused:  # Ready means "serving as asked": a paused exocorp does no work
        ctx.condition(ConditionType.READY, ConditionStatus.FALSE, Reason.PAUSED,
                      "paused: agents at zero, the portal stays reachable")
    elif all_ready:
        ctx.condition(ConditionType.READY, ConditionStatus.TRUE, Reason.AVAILABLE,
                      "every component is available")
    else:
        waiting = ", ".join(c.status.name for c in observed
                            if c.status.ready < c.status.desired)
        ctx.condition(ConditionType.READY, ConditionStatus.FALSE, Reason.COMPONENTS_NOT_READY,
                      f"waiting for: {waiting}")
    if exo.spec.paused:
        ctx.condition(ConditionType.PAUSED, ConditionStatus.TRUE, Reason.PAUSED,
                      exo.spec.pause_reason or "paused")
    else:
        ctx.condition(ConditionType.PAUSED, ConditionStatus.FALSE, Reason.AVAILABLE, "")
    hosts = builders.domains(exo, settings)
    route = cache.get("Ingress", builders.INGRESS, ns)
    portal_ready = any(c.status.ready > 0 for c in observed
                       if any(comp.portal and comp.name == c.status.name
                              for comp in release.components))
    if exo.spec.stopped:
        routing = RoutingState.DETACHED
    elif route is None:
        routing = RoutingState.PENDING
    elif portal_ready:
        routing = RoutingState.ATTACHED
    else:
        routing = RoutingState.RECONCILING
    tls = TlsState.ISSUED if tls_ready else TlsState.PENDING
    status.domains = [DomainStatus(host=hosts[kind], kind=kind, routing=routing, tls=tls)
                      for kind in DomainKind]
    if routing == RoutingState.ATTACHED:
        ctx.condition(ConditionType.DOMAINS_ATTACHED, ConditionStatus.TRUE, Reason.ATTACHED,
                      "routes serve both domains"
                      + ("" if tls_ready else "; certificate pending"))
    elif routing == RoutingState.DETACHED:
        ctx.condition(ConditionType.DOMAINS_ATTACHED, ConditionStatus.FALSE, Reason.DETACHED,
                      "routes removed while stopped")
    else:
        ctx.condition(ConditionType.DOMAINS_ATTACHED, ConditionStatus.FALSE, Reason.ATTACHING,
                      "routes created; waiting for the portal")
    rollout = status.rollout
    state = ReleaseState.INSTALLED
    if release.blocked:
        state = ReleaseState.WITHDRAWN
    elif rollout is not None and rollout.outcome == RevisionOutcome.PROGRESSING:
        state = ReleaseState.INSTALLING
    elif rollout is not None and rollout.outcome == RevisionOutcome.FAILED:
        state = ReleaseState.FAILED
    assert exo.spec.release is not None
    status.release = ReleaseStatus(version=release.version, channel=exo.spec.release.channel,
                                   status=state)


async def write_status(kube: Kube, cache: ObjectCache, ctx: Pass, body: Obj,
                       started: float) -> Obj | None:
    exo, status = ctx.exo, ctx.status
    old_phase = exo.status.phase
    status.phase = derive_phase(exo.spec, status, generation=ctx.generation)
    if (exo.status.observed_generation or 0) < ctx.generation and exo.spec.last_action:
        at = parse_time(exo.spec.last_action.at)
        if at is not None:
            metrics.RECONCILE_LATENCY.observe(max((ctx.now - at).total_seconds(), 0.0))
    status.observed_generation = ctx.generation
    for condition in status.conditions:
        condition.observed_generation = ctx.generation
    status.last_reconcile_seconds = round(time.monotonic() - started, 4)
    status.last_reconcile_time = format_timestamp(ctx.now)
    old = body.get("status") or {}
    new = status.to_wire()
    patch = merge_patch_diff(old, new)
    accrued = parse_time(old.get("runningSecondsAccruedAt"))
    flush = accrued is None or (ctx.now - accrued).total_seconds() >= _ACCRUAL_FLUSH_SECONDS
    if not (set(patch) - _VOLATILE) and not flush:
        return body
    written: Obj = await kube.patch(
        r.EXOCORPS, exo.metadata.name,
        {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
         "status": patch},
        subresource="status")
    cache.store("Exocorp", written)
    if old_phase != status.phase:
        ctx.events.append(("Normal" if status.phase != Phase.FAILED else "Warning",
                           "PhaseChanged", f"{old_phase or 'New'} -> {status.phase}"))
    for event_type, reason, message in ctx.events:
        await events.post(kube, written, event_type, reason, message)
    return written
