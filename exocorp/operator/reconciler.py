"""One reconcile pass per exocorp: compare the desired state (spec) with what exists, converge,
gate the rollout on health, remediate failures, and report the truth in status.

Level-based: a pass reads everything it needs, so a pass after a crash or restart at any point
simply continues. Writes carry the resourceVersion they were computed from; a conflict means the
world moved on, and the pass is retried from fresh state."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from exocorp import names
from exocorp.k8s import ApiError, Kube
from exocorp.k8s import resources as r
from exocorp.model import (
    OPERATOR_ACTOR,
    ROLLOUT_ACTIONS,
    Action,
    ConditionStatus,
    ConditionType,
    DomainKind,
    DomainStatus,
    Exocorp,
    ExocorpReleaseSpec,
    ExocorpStatus,
    Phase,
    Reason,
    ReleaseState,
    ReleaseStatus,
    RevisionContent,
    RevisionOutcome,
    RevisionRef,
    RevisionSummary,
    RollbackPolicy,
    RolloutStatus,
    RoutingState,
    TlsState,
    derive_phase,
    format_timestamp,
    initial_conditions,
    merge_patch_diff,
    set_condition,
)
from exocorp.operator import builders, destroy, events, health, metrics, revisions
from exocorp.operator.cache import ObjectCache
from exocorp.operator.settings import OperatorSettings
from exocorp.operator.workqueue import WorkQueue

log = logging.getLogger(__name__)
# cert-manager's Certificates: TLS is issued when the one for an exocorp's domains is Ready.
CERTIFICATES = r.Resource("cert-manager.io", "v1", "certificates", "Certificate", True)
Obj = dict[str, Any]
# Fields that change on every pass; alone they do not justify a status write.
_VOLATILE = {"lastReconcileSeconds", "lastReconcileTime", "runningSeconds",
             "runningSecondsTotal", "runningSecondsAccruedAt"}
_ACCRUAL_FLUSH_SECONDS = 60


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def rollout_key(exo: Exocorp, content: RevisionContent, current: RolloutStatus | None) -> str:
    """What identifies one rollout: the content and restart stamp, plus the time of the
    accepted rollout action (so a rollback to identical content is still a new rollout).
    Actions that start no rollout (pause, resume, stop) keep the current key."""
    base = builders.stable_hash({"content": content.canonical_json(),
                                 "restartAt": exo.spec.restart_at})
    action = exo.spec.last_action
    if action is None or action.action not in ROLLOUT_ACTIONS:
        if current is not None and current.key.split(".")[0] == base:
            return current.key
        return base
    return f"{base}.{builders.stable_hash(action.at)[:8]}"


# Managers whose writes to our objects are expected: ourselves, and the control plane's own
# controllers (which write status, or metadata such as a Deployment's revision annotation).
_EXPECTED_MANAGERS = frozenset({"exocorp", "kube-controller-manager", "kube-scheduler",
                                "kube-apiserver", "kwok"})


def _version(obj: Obj) -> str:
    """What changes when someone changes the object's content: its generation where it has one
    (status updates leave it alone, so a Deployment rolling out is not re-applied on every
    status change), else its resourceVersion."""
    meta = obj.get("metadata", {})
    generation = meta.get("generation")
    return f"g{generation}" if generation is not None else f"r{meta.get('resourceVersion', '')}"


def _edited_by_someone_else(live: Obj) -> bool:
    """True when a manager we do not expect owns content fields (not metadata, not status)."""
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") in _EXPECTED_MANAGERS or entry.get("subresource"):
            continue
        fields = entry.get("fieldsV1") or {}
        if set(fields) - {"f:metadata", "f:status"}:
            return True
    return False


class Reconciler:
    def __init__(self, kube: Kube, cache: ObjectCache, settings: OperatorSettings) -> None:
        self.kube = kube
        self.cache = cache
        self.settings = settings
        self.queue = WorkQueue(self.reconcile, settings.workers)
        self._applied: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._secret_written_at: dict[tuple[str, str, str], float] = {}
        self._starting: set[str] = set()

    # -- entry point ----------------------------------------------------------------------------

    async def reconcile(self, name: str) -> float | None:
        started = time.monotonic()
        try:
            again = await self._reconcile(name)
            self._starting.discard(name)  # the pass wrote its rollout (or started none)
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

    # -- the pass -------------------------------------------------------------------------------

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
            return await self._destroy(name, body)
        if names.FINALIZER not in (body["metadata"].get("finalizers") or []):
            # Before anything exists, so nothing can outlive a deleted exocorp.
            body = await self._set_finalizer(body, present=True)
        try:
            exo = Exocorp.model_validate(body)
        except ValidationError as err:
            first = err.errors()[0]["msg"]
            await events.post(self.kube, body, "Warning", "InvalidSpec",
                              f"spec rejected: {err.error_count()} error(s): {first}")
            return None
        started = time.monotonic()
        now = _now()
        status = exo.status.model_copy(deep=True)
        generation = exo.metadata.generation or 0
        if not status.conditions:
            status.conditions = initial_conditions(now, generation)
        ctx = _Pass(exo, status, now, generation)

        if not exo.spec.provisioned:
            self._draft_status(ctx)
            await self._write_status(ctx, body, started)
            return None

        content = RevisionContent.from_spec(exo.spec)
        assert content is not None
        release = self.release(content.release.version)
        if release is None:
            ctx.condition(ConditionType.PROGRESSING, ConditionStatus.FALSE, "ReleaseNotFound",
                          f"no ExocorpRelease has version {content.release.version}")
            ctx.condition(ConditionType.READY, ConditionStatus.FALSE, "ReleaseNotFound",
                          "the release to run is not published")
            await self._write_status(ctx, body, started)
            return 30.0

        key = rollout_key(exo, content, status.rollout)
        if status.rollout is None or status.rollout.key != key:
            # The throttle limits how many running exocorps are disrupted at once; a first
            # rollout has nothing running to disrupt, so it never waits for a slot.
            if status.rollout is not None and not self._slot_available(name):
                metrics.ROLLOUTS_QUEUED.inc()
                ctx.condition(ConditionType.PROGRESSING, ConditionStatus.TRUE, Reason.NEW_REVISION,
                              "waiting for a rollout slot (fleet rollout throttle)")
                await self._write_status(ctx, body, started)
                return 2.0
            await self._start_rollout(ctx, content, key)
        assert status.rollout is not None

        credentials, missing = self._credentials(exo, release)
        if missing:
            ctx.condition(ConditionType.CREDENTIALS_BOUND, ConditionStatus.FALSE,
                          Reason.MISSING_CREDENTIALS, "missing: " + ", ".join(sorted(missing)))
        else:
            ctx.condition(ConditionType.CREDENTIALS_BOUND, ConditionStatus.TRUE, Reason.BOUND,
                          f"{len(credentials)} provider credential(s) bound")

        inputs = builders.RuntimeInputs(release=release, revision=status.rollout.revision,
                                        credentials=credentials, settings=self.settings)
        ns = names.runtime_namespace(name)
        await self._apply_runtime(exo, inputs, ns)

        self._accrue(ctx)
        observed = health.observe(exo, release, self.cache, ns, status.rollout.revision)
        status.components = [c.status for c in observed]
        rollback_to = await self._gate(ctx, observed)
        tls_issued = await self._tls_issued(exo, ns)
        self._summarise(ctx, release, observed, tls_issued)
        written = await self._write_status(ctx, body, started)
        if rollback_to is not None and written is not None:
            await self._rollback(exo, written, rollback_to, ctx.failure_reason)
        in_progress = status.rollout.outcome == RevisionOutcome.PROGRESSING
        if in_progress:
            return 1.0
        # Jitter: exocorps listed together (a restart) must not all resync in the same second.
        return self.settings.resync_seconds * random.uniform(0.9, 1.1)  # noqa: S311

    # -- finalizer ------------------------------------------------------------------------------

    async def _set_finalizer(self, body: Obj, *, present: bool) -> Obj:
        """Add or remove our finalizer; the resourceVersion guards the rest of the list."""
        meta = body["metadata"]
        finalizers = [f for f in meta.get("finalizers") or [] if f != names.FINALIZER]
        if present:
            finalizers.append(names.FINALIZER)
        written: Obj = await self.kube.patch(r.EXOCORPS, meta["name"], {"metadata": {
            "finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}})
        self.cache.store("Exocorp", written)
        return written

    async def _destroy(self, name: str, body: Obj) -> float | None:
        """Tear the runtime down, then let the object go. Level-based like any pass: a pass
        after a crash simply continues the teardown."""
        if names.FINALIZER not in (body["metadata"].get("finalizers") or []):
            return None
        if not await destroy.tear_down(self.kube, self.settings, name, body):
            return 2.0  # the namespace is still terminating
        await self._set_finalizer(body, present=False)
        log.info("exocorp %s destroyed", name)
        return None

    # -- pieces -----------------------------------------------------------------------------------

    def release(self, version: str) -> ExocorpReleaseSpec | None:
        for body in self.cache.of_kind("ExocorpRelease"):
            spec = body.get("spec", {})
            if spec.get("version") == version:
                try:
                    return ExocorpReleaseSpec.model_validate(spec)
                except ValidationError:
                    return None
        return None

    def _slot_available(self, name: str) -> bool:
        """Take a rollout slot for ``name`` if one is free. Counts rollouts the cache shows in
        progress plus those this process started and has not recorded yet; the check and the
        reservation happen without an await, so two workers never take the last slot."""
        busy = set(self._starting)
        for body in self.cache.of_kind("Exocorp"):
            rollout = (body.get("status") or {}).get("rollout") or {}
            if rollout.get("outcome") == RevisionOutcome.PROGRESSING.value:
                busy.add(body["metadata"]["name"])
        busy.discard(name)
        metrics.ROLLOUTS_IN_PROGRESS.set(len(busy))
        if len(busy) >= self.settings.max_concurrent_rollouts:
            return False
        self._starting.add(name)
        return True

    async def _start_rollout(self, ctx: _Pass, content: RevisionContent, key: str) -> None:
        exo, status = ctx.exo, ctx.status
        previous = status.rollout
        if previous is not None and previous.outcome == RevisionOutcome.PROGRESSING:
            ctx.finish_entry(previous, RevisionOutcome.SUPERSEDED, "a newer rollout replaced it")
            await revisions.record_outcome(self.kube, self.settings.namespace, previous.revision,
                                           RevisionOutcome.SUPERSEDED)
        rev = await revisions.ensure_revision(self.kube, self.settings.namespace, exo, content,
                                              key)
        number = int(rev["revision"])
        rev_name = rev["metadata"]["name"]
        action = exo.spec.last_action
        status.rollout = RolloutStatus(
            key=key, revision=rev_name, number=number,
            action=action.action if action else None, started_at=format_timestamp(ctx.now),
            outcome=RevisionOutcome.PROGRESSING)
        status.current_revision = RevisionRef(name=rev_name, number=number)
        status.history = [RevisionSummary(
            name=rev_name, number=number, version=content.release.version,
            action=action.action if action else None,
            requested_by=action.requested_by if action else None,
            outcome=RevisionOutcome.PROGRESSING, created_at=format_timestamp(ctx.now),
            reason=action.reason if action else None,
        ), *[h for h in status.history if h.number != number]][: exo.spec.revision_history_limit]
        rolling_back = action is not None and action.action == Action.ROLLBACK
        ctx.condition(ConditionType.PROGRESSING, ConditionStatus.TRUE,
                      Reason.ROLLING_BACK if rolling_back else Reason.NEW_REVISION,
                      f"revision {rev_name} (#{number}) rolling out")
        ctx.condition(ConditionType.STALLED, ConditionStatus.FALSE, Reason.ROLLOUT_IN_PROGRESS,
                      "a rollout is under way")
        if rolling_back and action is not None and action.requested_by != OPERATOR_ACTOR:
            metrics.ROLLBACKS.labels(kind="manual").inc()
        keep = {rev_name}
        if status.last_successful_revision is not None:
            keep.add(status.last_successful_revision.name)
        await revisions.prune(self.kube, self.settings.namespace, exo.metadata.name,
                              exo.spec.revision_history_limit, keep)
        who = f" by {action.requested_by}" if action else ""
        what = action.action.value if action else "spec change"
        ctx.events.append(("Normal", "RolloutStarted",
                           f"revision {rev_name} (#{number}, release {content.release.version}) "
                           f"rolling out: {what}{who}"))

    def _credentials(self, exo: Exocorp,
                     release: ExocorpReleaseSpec) -> tuple[dict[str, str], set[str]]:
        """Copy each bound provider Secret's value; report required providers left unbound."""
        data: dict[str, str] = {}
        bound: set[str] = set()
        for binding in exo.spec.provider_bindings:
            secret = self.cache.get("Secret", binding.secret_name, self.settings.namespace)
            value = (secret or {}).get("data", {}).get("value")
            if value:
                data[builders.credential_key(binding.provider)] = value
                bound.add(binding.provider)
        required = set(release.required_providers)
        if exo.spec.config is not None:
            required |= set(exo.spec.config.required_providers)
        return data, required - bound

    async def _apply(self, resource: r.Resource, body: Obj) -> None:
        meta = body["metadata"]
        key = (resource.kind, meta.get("namespace", ""), meta["name"])
        desired = builders.stable_hash(body)
        if resource.kind == "Secret":
            await self._write_secret(key, body, desired)
            return
        live = self.cache.get(resource.kind, meta["name"], meta.get("namespace", ""))
        recorded = self._applied.get(key)
        if live is not None and recorded == (desired, _version(live)):
            return  # unchanged since we applied it: no round trip
        if live is not None and _edited_by_someone_else(live):
            # Server-side apply keeps what another manager added (an extra list item, say);
            # a merge patch of our whole content first puts every field back as we want it.
            content = {k: v for k, v in body.items() if k not in ("apiVersion", "kind",
                                                                  "metadata")}
            await self.kube.patch(resource, meta["name"], content,
                                  namespace=meta.get("namespace"), patch_type="merge")
        result = await self.kube.apply(resource, body)
        self.cache.store(resource.kind, result)
        self._applied[key] = (desired, _version(result))

    async def _write_secret(self, key: tuple[str, str, str], body: Obj, desired: str) -> None:
        """Secrets in exocorp namespaces are written, never read (the operator may not read
        Secrets outside the platform namespace): server-side apply when the content changed, and
        again every ``secret_refresh_seconds`` so a copy deleted or edited by hand comes back.
        The API server's answer (which carries the data) is not kept."""
        now = time.monotonic()
        recorded = self._applied.get(key)
        written_at = self._secret_written_at.get(key)
        if (recorded is not None and recorded[0] == desired and written_at is not None
                and now - written_at < self.settings.secret_refresh_seconds):
            return
        await self.kube.apply(r.SECRETS, body)
        self._applied[key] = (desired, "")
        self._secret_written_at[key] = now

    async def _tls_issued(self, exo: Exocorp, ns: str) -> bool:
        """cert-manager's Certificate for the exocorp's domains is Ready (the certificate Secret
        itself is not read). Without a TLS issuer there is none: pending."""
        if not self.settings.tls_issuer:
            return False
        try:
            cert = await self.kube.get_or_none(CERTIFICATES, builders.tls_secret_name(exo), ns)
        except ApiError as err:  # cert-manager not installed, or not allowed: not issued
            log.debug("certificate of %s not readable: %s", exo.metadata.name, err.reason)
            return False
        conditions = ((cert or {}).get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    async def _delete(self, resource: r.Resource, name: str, namespace: str) -> None:
        if self.cache.get(resource.kind, name, namespace) is None:
            return
        await self.kube.delete(resource, name, namespace)
        self.cache.forget(resource.kind, namespace, name)
        self._applied.pop((resource.kind, namespace, name), None)

    async def _apply_runtime(self, exo: Exocorp, inputs: builders.RuntimeInputs, ns: str) -> None:
        release, settings = inputs.release, inputs.settings
        await self._apply(r.NAMESPACES, builders.namespace(exo))
        # Everything else lives in that namespace and is independent: apply concurrently.
        objects: list[tuple[r.Resource, Obj]] = [
            (r.SERVICEACCOUNTS, builders.service_account(exo)),
            (r.RESOURCEQUOTAS, builders.resource_quota(exo, release, settings)),
            (r.LIMITRANGES, builders.limit_range(exo, settings)),
            *((r.NETWORKPOLICIES, p) for p in builders.network_policies(exo, release, settings)),
            (r.SECRETS, builders.credentials_secret(exo, inputs.credentials)),
            (r.CONFIGMAPS, builders.effective_manifest(exo, inputs)),
            (r.PVCS, builders.state_claim(exo, settings)),
        ]
        for component in release.components:
            svc = builders.service(exo, component)
            if svc is not None:
                objects.append((r.SERVICES, svc))
            objects.append((r.DEPLOYMENTS, builders.deployment(exo, component, inputs)))
        route = builders.ingress(exo, release, settings)
        if route is not None:
            objects.append((r.INGRESSES, route))
        await asyncio.gather(*(self._apply(resource, body) for resource, body in objects))
        # Components an earlier release had and this one does not; routes while stopped.
        wanted = {c.name for c in release.components}
        for kind, resource in (("Deployment", r.DEPLOYMENTS), ("Service", r.SERVICES)):
            for obj in self.cache.owned(exo.metadata.name, kind):
                obj_name = obj["metadata"]["name"]
                if obj["metadata"].get("namespace") == ns and obj_name not in wanted:
                    await self._delete(resource, obj_name, ns)
        if route is None:
            await self._delete(r.INGRESSES, builders.INGRESS, ns)

    def _accrue(self, ctx: _Pass) -> None:
        """Add running time for the interval since the last accrual, at the readiness observed
        at its start. Whole seconds only; the remainder stays for the next pass, so the
        counters never lose or double-count a second across passes, crashes or restarts."""
        status = ctx.status
        since = _parse(status.running_seconds_accrued_at)
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

    async def _gate(self, ctx: _Pass,
                    observed: list[health.ComponentHealth]) -> RevisionRef | None:
        """Decide the current rollout's outcome. Returns the revision to roll back to, if any."""
        exo, status = ctx.exo, ctx.status
        rollout = status.rollout
        assert rollout is not None
        if rollout.outcome != RevisionOutcome.PROGRESSING:
            return None
        started = _parse(rollout.started_at) or ctx.now
        crashing = [c for c in observed if c.crash_looping
                    or c.crash_restarts > exo.spec.crash_loop_restart_threshold]
        if exo.spec.stopped:
            ctx.finish_entry(rollout, RevisionOutcome.CANCELLED, "stopped during rollout")
            await revisions.record_outcome(self.kube, self.settings.namespace, rollout.revision,
                                           RevisionOutcome.CANCELLED, "stopped")
            ctx.condition(ConditionType.PROGRESSING, ConditionStatus.FALSE,
                          Reason.ROLLOUT_CANCELLED, "the exocorp was stopped during the rollout")
            return None
        if crashing and any(c.crash_restarts > exo.spec.crash_loop_restart_threshold
                            for c in crashing):
            worst = max(crashing, key=lambda c: c.crash_restarts)
            return await self._fail(ctx, Reason.CRASH_LOOP,
                                    f"component {worst.status.name} is crash-looping "
                                    f"({worst.crash_restarts} restarts, threshold "
                                    f"{exo.spec.crash_loop_restart_threshold})")
        if all(c.rolled_out for c in observed):
            await self._succeed(ctx)
            return None
        if (ctx.now - started).total_seconds() > exo.spec.progress_deadline_seconds:
            waiting = [c.status.name for c in observed if not c.rolled_out]
            return await self._fail(ctx, Reason.PROGRESS_DEADLINE_EXCEEDED,
                                    f"not available within {exo.spec.progress_deadline_seconds}s: "
                                    + ", ".join(waiting))
        ctx.condition(ConditionType.PROGRESSING, ConditionStatus.TRUE,
                      Reason.ROLLING_BACK if rollout.action == Action.ROLLBACK
                      else Reason.ROLLOUT_IN_PROGRESS,
                      f"revision {rollout.revision} (#{rollout.number}) rolling out")
        return None

    async def _succeed(self, ctx: _Pass) -> None:
        status, rollout = ctx.status, ctx.status.rollout
        assert rollout is not None
        ctx.finish_entry(rollout, RevisionOutcome.SUCCEEDED, None)
        await revisions.record_outcome(self.kube, self.settings.namespace, rollout.revision,
                                       RevisionOutcome.SUCCEEDED)
        status.last_successful_revision = RevisionRef(name=rollout.revision, number=rollout.number)
        status.failed_revisions_since_success = 0
        automatic = ctx.exo.spec.last_action is not None \
            and ctx.exo.spec.last_action.requested_by == OPERATOR_ACTOR
        if not automatic:
            status.rollbacks_since_success = 0
            ctx.condition(ConditionType.DEGRADED, ConditionStatus.FALSE, Reason.AVAILABLE,
                          "the requested revision is running")
        ctx.condition(ConditionType.PROGRESSING, ConditionStatus.FALSE, Reason.ROLLOUT_COMPLETE,
                      f"revision {rollout.revision} (#{rollout.number}) is available")
        ctx.condition(ConditionType.STALLED, ConditionStatus.FALSE, Reason.ROLLOUT_COMPLETE, "")
        ctx.events.append(("Normal", "RolloutSucceeded",
                           f"revision {rollout.revision} (#{rollout.number}) is available"))

    async def _fail(self, ctx: _Pass, reason: str, message: str) -> RevisionRef | None:
        exo, status, rollout = ctx.exo, ctx.status, ctx.status.rollout
        assert rollout is not None
        ctx.failure_reason = message
        ctx.finish_entry(rollout, RevisionOutcome.FAILED, message)
        await revisions.record_outcome(self.kube, self.settings.namespace, rollout.revision,
                                       RevisionOutcome.FAILED, message)
        status.failed_revisions_since_success += 1
        metrics.REVISIONS_FAILED.inc()
        ctx.condition(ConditionType.PROGRESSING, ConditionStatus.FALSE, reason, message)
        ctx.events.append(("Warning", "RolloutFailed",
                           f"revision {rollout.revision} (#{rollout.number}) failed: {message}"))
        target = status.last_successful_revision
        if exo.spec.rollback_policy == RollbackPolicy.AUTOMATIC and target is not None \
                and target.name != rollout.revision:
            status.rollbacks_since_success += 1
            metrics.ROLLBACKS.labels(kind="automatic").inc()
            ctx.condition(ConditionType.DEGRADED, ConditionStatus.TRUE, Reason.ROLLED_BACK,
                          f"revision {rollout.revision} failed ({message}); rolling back to "
                          f"{target.name} (#{target.number})")
            ctx.events.append(("Warning", "RollingBack",
                               f"rolling back to revision {target.name} (#{target.number})"))
            return target
        if target is None:
            stall_reason, why = Reason.NO_SUCCESSFUL_REVISION, "no successful revision to return to"
        elif exo.spec.rollback_policy == RollbackPolicy.MANUAL:
            stall_reason, why = Reason.MANUAL_ROLLBACK_POLICY, "rollback policy is Manual"
        else:
            stall_reason = Reason.NO_SUCCESSFUL_REVISION
            why = "it was the last successful revision; nothing older to return to"
        ctx.condition(ConditionType.STALLED, ConditionStatus.TRUE, stall_reason,
                      f"revision {rollout.revision} failed: {message}; {why}")
        ctx.condition(ConditionType.DEGRADED, ConditionStatus.TRUE, reason, message)
        return None

    async def _rollback(self, exo: Exocorp, written: Obj, target: RevisionRef,
                        why: str | None) -> None:
        """Write the last successful revision's content back into the spec (desired state)."""
        rev = await self.kube.get(r.CONTROLLERREVISIONS, target.name, self.settings.namespace)
        content = revisions.content_of(rev)
        spec = content.model_dump(mode="json", by_alias=True, exclude_none=True)
        spec["lastAction"] = {
            "action": Action.ROLLBACK.value, "requestedBy": OPERATOR_ACTOR,
            "reason": f"automatic rollback: {why}"[:500] if why else "automatic rollback",
            "at": format_timestamp(_now()), "targetRevision": target.name,
        }
        await self.kube.patch(r.EXOCORPS, exo.metadata.name, {
            "metadata": {"resourceVersion": written["metadata"]["resourceVersion"]},
            "spec": spec})

    def _draft_status(self, ctx: _Pass) -> None:
        hosts = builders.domains(ctx.exo, self.settings)
        ctx.status.domains = [DomainStatus(host=hosts[kind], kind=kind) for kind in DomainKind]
        for type_ in (ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED,
                      ConditionType.PAUSED, ConditionType.STALLED):
            ctx.condition(type_, ConditionStatus.FALSE, Reason.DRAFT, "not provisioned yet")
        ctx.condition(ConditionType.DOMAINS_ATTACHED, ConditionStatus.FALSE, Reason.DRAFT,
                      "domains reserved, attached at provisioning")

    def _summarise(self, ctx: _Pass, release: ExocorpReleaseSpec,
                   observed: list[health.ComponentHealth], tls_ready: bool) -> None:
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
        hosts = builders.domains(exo, self.settings)
        route = self.cache.get("Ingress", builders.INGRESS, ns)
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

    async def _write_status(self, ctx: _Pass, body: Obj, started: float) -> Obj | None:
        exo, status = ctx.exo, ctx.status
        old_phase = exo.status.phase
        status.phase = derive_phase(exo.spec, status, generation=ctx.generation)
        if (exo.status.observed_generation or 0) < ctx.generation and exo.spec.last_action:
            at = _parse(exo.spec.last_action.at)
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
        accrued = _parse(old.get("runningSecondsAccruedAt"))
        flush = accrued is None or (ctx.now - accrued).total_seconds() >= _ACCRUAL_FLUSH_SECONDS
        if not (set(patch) - _VOLATILE) and not flush:
            return body
        written: Obj = await self.kube.patch(
            r.EXOCORPS, exo.metadata.name,
            {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
             "status": patch},
            subresource="status")
        self.cache.store("Exocorp", written)
        if old_phase != status.phase:
            ctx.events.append(("Normal" if status.phase != Phase.FAILED else "Warning",
                               "PhaseChanged", f"{old_phase or 'New'} -> {status.phase}"))
        for event_type, reason, message in ctx.events:
            await events.post(self.kube, written, event_type, reason, message)
        return written


class _Pass:
    """State of one reconcile pass."""

    def __init__(self, exo: Exocorp, status: ExocorpStatus, now: datetime, generation: int):
        self.exo = exo
        self.status = status
        self.now = now
        self.generation = generation
        self.events: list[tuple[str, str, str]] = []
        self.failure_reason: str | None = None

    def condition(self, type_: ConditionType, status: ConditionStatus, reason: str,
                  message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, type_, status, reason=reason, message=message, now=self.now,
            observed_generation=self.generation)

    def finish_entry(self, rollout: RolloutStatus, outcome: RevisionOutcome,
                     reason: str | None) -> None:
        rollout.outcome = outcome
        for entry in self.status.history:
            if entry.name == rollout.revision and entry.number == rollout.number:
                entry.outcome = outcome
                entry.finished_at = format_timestamp(self.now)
                if reason:
                    entry.reason = reason[:500]

