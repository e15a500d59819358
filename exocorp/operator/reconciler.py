"""One reconcile pass per exocorp: compare the desired state (spec) with what exists, converge,
gate the rollout on health, remediate failures, and report the truth in status.

Level-based: a pass reads everything it needs, so a pass after a crash or restart at any point
simply continues. Writes carry the resourceVersion they were computed from; a conflict means the
world moved on, and the pass is retried from fresh state.

This module dispatches a pass; the concerns live beside it: ``rollout`` (slot, start, health
gate, succeed, fail, rollback), ``runtime_objects`` (apply, credentials, TLS, drift),
``status`` (summarise, write, running-time counters), ``destroy`` (teardown and the finalizer)."""

from __future__ import annotations

import logging
import random
import time

from pydantic import ValidationError

from exocorp import names
from exocorp.k8s import ApiError, Kube, Obj
from exocorp.k8s import resources as r
from exocorp.model import (
    ConditionStatus,
    ConditionType,
    Exocorp,
    ExocorpReleaseSpec,
    Reason,
    RevisionContent,
    RevisionOutcome,
    get_condition,
    initial_conditions,
)
from exocorp.operator import (
    destroy,
    events,
    health,
    metrics,
    ownership,
    reconcile_pass,
)
from exocorp.operator import status as status_report
from exocorp.operator.cache import ObjectCache
from exocorp.operator.reconcile_pass import Pass
from exocorp.operator.rollout import Rollouts, rollout_key
from exocorp.operator.runtime_objects import RuntimeObjects
from exocorp.operator.settings import OperatorSettings
from exocorp.operator.workqueue import WorkQueue
from exocorp.runtime import builders

log = logging.getLogger(__name__)


class Reconciler:
    """Dispatches one pass per exocorp to the concerns that converge and report it."""

    def __init__(self, kube: Kube, cache: ObjectCache, settings: OperatorSettings) -> None:
        self.kube = kube
        self.cache = cache
        self.settings = settings
        self.queue = WorkQueue(self.reconcile, settings.workers)
        self.objects = RuntimeObjects(kube, cache, settings)
        self.rollouts = Rollouts(kube, cache, settings)

    async def reconcile(self, name: str) -> float | None:
        started = time.monotonic()
        try:
            again = await self._reconcile(name)
            self.rollouts.starting.discard(name)  # the pass wrote its rollout (or started none)
        except ApiError as err:
            if err.conflict:
                metrics.RECONCILES.labels(result="conflict").inc()
                return 0.2
            metrics.RECONCILES.labels(result="error").inc()
            log.warning("reconcile of %s: %s", name, err)
            return 5.0
        except Exception:
            metrics.RECONCILES.labels(result="error").inc()
            raise
        finally:
            metrics.RECONCILE_DURATION.observe(time.monotonic() - started)
        metrics.RECONCILES.labels(result="success").inc()
        return again

    async def _reconcile(self, name: str) -> float | None:
        # The watch keeps the cache current; every write below carries the resourceVersion
        # read here, so a stale copy costs a retry, never a wrong write.
        body = self.cache.get("Exocorp", name)
        if body is None:
            body = await self.kube.get_or_none(r.EXOCORPS, name)
            if body is None or not self.settings.owns(body):
                return None  # gone, or moved to another shard: its watch dropped it
            self.cache.store("Exocorp", body)
        if body["metadata"].get("deletionTimestamp"):
            return await destroy.destroy_pass(self.kube, self.cache, self.settings, name, body)
        if names.FINALIZER not in (body["metadata"].get("finalizers") or []):
            # Before anything exists, so nothing can outlive a deleted exocorp.
            body = await destroy.set_finalizer(self.kube, self.cache, body, present=True)
        try:
            exo = Exocorp.model_validate(body)
        except ValidationError as err:
            first = err.errors()[0]["msg"]
            await events.post(self.kube, body, "Warning", "InvalidSpec",
                              f"spec rejected: {err.error_count()} error(s): {first}")
            return None
        started = time.monotonic()
        now = reconcile_pass.now()
        status = exo.status.model_copy(deep=True)
        generation = exo.metadata.generation or 0
        if not status.conditions:
            status.conditions = initial_conditions(now, generation)
        ctx = Pass(exo, status, now, generation)

        if not exo.spec.provisioned:
            status_report.draft_status(ctx, self.settings)
            await status_report.write_status(self.kube, self.cache, ctx, body, started)
            return None

        content = RevisionContent.from_spec(exo.spec)
        assert content is not None
        release = self.release(content.release.version)
        if release is None:
            ctx.condition(ConditionType.PROGRESSING, ConditionStatus.FALSE, "ReleaseNotFound",
                          f"no ExocorpRelease has version {content.release.version}")
            ctx.condition(ConditionType.READY, ConditionStatus.FALSE, "ReleaseNotFound",
                          "the release to run is not published")
            await status_report.write_status(self.kube, self.cache, ctx, body, started)
            return 30.0

        refusal = await ownership.claim_namespace(self.kube, self.cache, exo)
        if refusal is not None:
            return await self._namespace_not_owned(ctx, body, started, refusal)
        stalled = get_condition(status.conditions, ConditionType.STALLED)
        if stalled is not None and stalled.reason == ownership.NAMESPACE_NOT_OWNED:
            ctx.condition(ConditionType.STALLED, ConditionStatus.FALSE, Reason.INITIALIZING,
                          "the runtime namespace is this exocorp's")

        key = rollout_key(exo, content, status.rollout)
        if status.rollout is None or status.rollout.key != key:
            # The throttle limits how many running exocorps are disrupted at once; a first
            # rollout has nothing running to disrupt, so it never waits for a slot.
            if status.rollout is not None and not self.rollouts.slot_available(name):
                metrics.ROLLOUTS_QUEUED.inc()
                ctx.condition(ConditionType.PROGRESSING, ConditionStatus.TRUE, Reason.NEW_REVISION,
                              "waiting for a rollout slot (fleet rollout throttle)")
                await status_report.write_status(self.kube, self.cache, ctx, body, started)
                return 2.0
            await self.rollouts.start(ctx, content, key)
        assert status.rollout is not None

        credentials, missing, refused = self.objects.credentials(exo, release)
        if refused:
            why = (f"not provider credentials of the owner {exo.spec.owner}: "
                   + ", ".join(sorted(refused)) + "; not copied")
            ctx.condition(ConditionType.CREDENTIALS_BOUND, ConditionStatus.FALSE,
                          ownership.CREDENTIAL_NOT_OWNED, why)
            ctx.events.append(("Warning", ownership.CREDENTIAL_NOT_OWNED, why))
        elif missing:
            ctx.condition(ConditionType.CREDENTIALS_BOUND, ConditionStatus.FALSE,
                          Reason.MISSING_CREDENTIALS, "missing: " + ", ".join(sorted(missing)))
        else:
            ctx.condition(ConditionType.CREDENTIALS_BOUND, ConditionStatus.TRUE, Reason.BOUND,
                          f"{len(credentials)} provider credential(s) bound")

        inputs = builders.RuntimeInputs(release=release, revision=status.rollout.revision,
                                        credentials=credentials, settings=self.settings)
        ns = names.runtime_namespace(name)
        await self.objects.apply_runtime(exo, inputs, ns)

        status_report.accrue(ctx)
        observed = health.observe(exo, release, self.cache, ns, status.rollout.revision)
        status.components = [c.status for c in observed]
        rollback_to = await self.rollouts.gate(ctx, observed)
        tls_issued = await self.objects.tls_issued(exo, ns)
        status_report.summarise(ctx, release, observed, tls_issued, self.cache,
                                self.settings)
        written = await status_report.write_status(self.kube, self.cache, ctx, body, started)
        if rollback_to is not None and written is not None:
            await self.rollouts.rollback(exo, written, rollback_to, ctx.failure_reason)
        if status.rollout.outcome == RevisionOutcome.PROGRESSING:
            return self.rollouts.recheck_after(ctx, observed)
        # Jitter: exocorps listed together (a restart) must not all resync in the same second.
        return self.settings.resync_seconds * random.uniform(0.9, 1.1)  # noqa: S311

    async def _namespace_not_owned(self, ctx: Pass, body: Obj, started: float,
                                   refusal: str) -> float:
        """The runtime namespace is someone else's: nothing is written into it."""
        for type_ in (ConditionType.STALLED, ConditionType.READY):
            status = ConditionStatus.TRUE if type_ == ConditionType.STALLED \
                else ConditionStatus.FALSE
            ctx.condition(type_, status, ownership.NAMESPACE_NOT_OWNED, refusal)
        ctx.events.append(("Warning", ownership.NAMESPACE_NOT_OWNED, refusal))
        await status_report.write_status(self.kube, self.cache, ctx, body, started)
        return 30.0

    def release(self, version: str) -> ExocorpReleaseSpec | None:
        for body in self.cache.of_kind("ExocorpRelease"):
            spec = body.get("spec", {})
            if spec.get("version") == version:
                try:
                    return ExocorpReleaseSpec.model_validate(spec)
                except ValidationError:
                    return None
        return None
