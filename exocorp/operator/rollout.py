"""Rollouts: a fleet-wide slot, the start of a revision, the health gate that decides its
outcome, success, failure with automatic rollback (or a stall), and writing a rollback back into
the spec."""

from __future__ import annotations

import logging

from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.lifecycle.plan import rollback_spec
from exocorp.model import (
    OPERATOR_ACTOR,
    ROLLOUT_ACTIONS,
    Action,
    ConditionStatus,
    ConditionType,
    Exocorp,
    Reason,
    RevisionContent,
    RevisionOutcome,
    RevisionRef,
    RevisionSummary,
    RollbackPolicy,
    RolloutStatus,
    format_timestamp,
)
from exocorp.operator import health, metrics, revisions
from exocorp.operator.cache import ObjectCache
from exocorp.operator.reconcile_pass import Pass, now, parse_time
from exocorp.operator.settings import OperatorSettings
from exocorp.runtime import builders

log = logging.getLogger(__name__)

# How long a rollout under way may go without a look when no event arrives (see recheck_after).
PROGRESS_RECHECK_SECONDS = 30.0


def rollout_key(exo: Exocorp, content: RevisionContent, current: RolloutStatus | None) -> str:
    """What identifies one rollout: the content and restart stamp, plus the time of the
    accepted rollout action (so a rollback to identical content is still a new rollout).
    Actions that start no rollout (pause, resume, stop) keep the current key. The stamp has
    one-second precision, so a rollback within the second of the rollout it returns to repeats
    that rollout's key; ``revisions.ensure_revision`` still gives it a new number."""
    base = builders.stable_hash({"content": content.canonical_json(),
                                 "restartAt": exo.spec.restart_at})
    action = exo.spec.last_action
    if action is None or action.action not in ROLLOUT_ACTIONS:
        if current is not None and current.key.split(".")[0] == base:
            return current.key
        return base
    return f"{base}.{builders.stable_hash(action.at)[:8]}"


class Rollouts:
    """Starts and judges rollouts; holds the slots this process took and has not recorded."""

    def __init__(self, kube: Kube, cache: ObjectCache, settings: OperatorSettings) -> None:
        self.kube = kube
        self.cache = cache
        self.settings = settings
        self.starting: set[str] = set()

    def slot_available(self, name: str) -> bool:
        """Take a rollout slot for ``name`` if one is free. Counts rollouts the cache shows in
        progress plus those this process started and has not recorded yet; the check and the
        reservation happen without an await, so two workers never take the last slot."""
        busy = set(self.starting)
        for body in self.cache.of_kind("Exocorp"):
            rollout = (body.get("status") or {}).get("rollout") or {}
            if rollout.get("outcome") == RevisionOutcome.PROGRESSING.value:
                busy.add(body["metadata"]["name"])
        busy.discard(name)
        metrics.ROLLOUTS_IN_PROGRESS.set(len(busy))
        if len(busy) >= self.settings.max_concurrent_rollouts:
            return False
        self.starting.add(name)
        return True

    async def start(self, ctx: Pass, content: RevisionContent, key: str) -> None:
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

    async def gate(self, ctx: Pass,
                    observed: list[health.ComponentHealth]) -> RevisionRef | None:
        """Decide the current rollout's outcome. Returns the revision to roll back to, if any."""
        exo, status = ctx.exo, ctx.status
        rollout = status.rollout
        assert rollout is not None
        if rollout.outcome != RevisionOutcome.PROGRESSING:
            return None
        started = parse_time(rollout.started_at) or ctx.now
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
        # The deadline is Kubernetes': no progress for progressDeadlineSeconds, judged by each
        # Deployment's controller (as kubectl rollout status, Argo Rollouts and Flux judge it),
        # not a clock from the rollout's start: in a fleet-wide burst the controllers take many
        # minutes to reach every Deployment, and a clock would fail rollouts that are merely
        # queued. A Deployment that never appeared has no controller to judge it: the clock.
        deadline = exo.spec.progress_deadline_seconds
        stuck = [c.status.name for c in observed if c.deadline_exceeded]
        if stuck:
            return await self._fail(ctx, Reason.PROGRESS_DEADLINE_EXCEEDED,
                                    f"no progress within {deadline}s: " + ", ".join(stuck))
        absent = [c.status.name for c in observed if c.missing]
        if absent and (ctx.now - started).total_seconds() > deadline:
            return await self._fail(ctx, Reason.PROGRESS_DEADLINE_EXCEEDED,
                                    f"not created within {deadline}s: " + ", ".join(absent))
        ctx.condition(ConditionType.PROGRESSING, ConditionStatus.TRUE,
                      Reason.ROLLING_BACK if rollout.action == Action.ROLLBACK
                      else Reason.ROLLOUT_IN_PROGRESS,
                      f"revision {rollout.revision} (#{rollout.number}) rolling out")
        return None

    def recheck_after(self, ctx: Pass, observed: list[health.ComponentHealth]) -> float:
        """Seconds until a rollout under way is looked at again without an event. Its progress
        arrives as events (the Deployments and Pods are watched), so this is a safety net, not
        a poll: re-checking every progressing exocorp each second cost a fleet-wide burst about
        300 passes a second. Never later than the resync, and a Deployment that never appeared
        has a clock for its deadline: the re-check falls due when that clock runs out."""
        rollout = ctx.status.rollout
        assert rollout is not None
        safety_net = min(PROGRESS_RECHECK_SECONDS, self.settings.resync_seconds)
        if not any(c.missing for c in observed):
            return safety_net
        started = parse_time(rollout.started_at) or ctx.now
        left = ctx.exo.spec.progress_deadline_seconds - (ctx.now - started).total_seconds()
        return min(safety_net, max(1.0, left + 1.0))

    async def _succeed(self, ctx: Pass) -> None:
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

    async def _fail(self, ctx: Pass, reason: str, message: str) -> RevisionRef | None:
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

    async def rollback(self, exo: Exocorp, written: Obj, target: RevisionRef,
                        why: str | None) -> None:
        """Write the last successful revision's content back into the spec (desired state)."""
        rev = await self.kube.get(r.CONTROLLERREVISIONS, target.name, self.settings.namespace)
        content = revisions.content_of(rev)
        spec = rollback_spec(content)  # the planner's rule: what a rollback restores
        spec["lastAction"] = {
            "action": Action.ROLLBACK.value, "requestedBy": OPERATOR_ACTOR,
            "reason": f"automatic rollback: {why}"[:500] if why else "automatic rollback",
            "at": format_timestamp(now()), "targetRevision": target.name,
        }
        await self.kube.patch(r.EXOCORPS, exo.metadata.name, {
            "metadata": {"resourceVersion": written["metadata"]["resourceVersion"]},
            "spec": spec})
