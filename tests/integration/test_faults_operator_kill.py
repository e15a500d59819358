"""The operator SIGKILLed in the middle of each lifecycle action, then started again.

Each action is asked for over HTTP through the real gateway app (so the audit trail is written as
in production). As soon as the operator has started acting on it (a new revision number exists,
a Deployment was scaled, the tear-down began) the operator process is SIGKILLed and started
again. Then: the exocorp converges to the action's phase; no duplicate revision (one
ControllerRevision per content, revision numbers unique and as many as rollouts were asked
for, history strictly decreasing); no orphan (the managed objects in the runtime namespace are
exactly what the builders make; after destroy the exocorp, its namespace, volumes and revisions
are gone); and status agrees with the last accepted action of the audit trail.

These tests run an operator of their own, peered with the session's operator under a higher
priority (so the session operator pauses instead of racing it). Each test SIGKILLs the running
instance and starts a new process with a higher priority still, so the killed instance's record
(left until it expires) blocks nobody; the last instance carries on into the next test. At the
end the records are removed and the session operator resumes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from exocorp import names
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model import Exocorp, ExocorpReleaseSpec, Phase, RevisionOutcome
from exocorp.operator.settings import OperatorSettings
from exocorp.runtime import builders
from exocorp.store import Database
from exocorp.store.schema import AuditEvent
from exocorp.testing.platform import (
    CLUSTER_PEERINGS,
    PEERING_NAME,
    PLATFORM_NAMESPACE,
    OperatorProcess,
)
from exocorp.testing.waiting import eventually
from tests.plugins.gateway_cluster import (
    Api,
    GatewayUnderTest,
    sample_draft,
    serve_gateway,
    unique_slug,
)
from tests.plugins.platform import CANARY_SECRET, Driver

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
BASE_PRIORITY = 1000
# Kinds of the runtime objects, as the operator labels them (managed-by) in a runtime namespace.
RUNTIME_KINDS = (r.SERVICEACCOUNTS, r.RESOURCEQUOTAS, r.LIMITRANGES, r.NETWORKPOLICIES,
                 r.SECRETS, r.CONFIGMAPS, r.PVCS, r.SERVICES, r.DEPLOYMENTS, r.INGRESSES)
MANAGED = f"{names.LABEL_MANAGED_BY}={names.MANAGER}"


@dataclass(frozen=True)
class Case:
    action: str
    before: tuple[tuple[str, Obj], ...]
    """Actions (and bodies) that bring the exocorp to where the action under test applies."""
    body: Obj
    phase: str | None
    """The phase it must converge to (None: destroyed)."""
    rollouts: int
    """Rollouts asked for in all: the highest revision number there may be."""
    version: str = "1.0.0"


CASES = [
    Case("provision", (), {}, "Running", 1),
    Case("update", (("provision", {}),), {"reason": "newer"}, "Running", 2, "1.1.0"),
    Case("restart", (("provision", {}),), {}, "Running", 2),
    Case("stop", (("provision", {}),), {}, "Stopped", 1),
    Case("pause", (("provision", {}),), {"reason": "budget review"}, "Paused", 1),
    Case("resume", (("provision", {}), ("pause", {"reason": "budget review"})), {}, "Running",
         1),
    Case("reprovision", (("provision", {}),), {}, "Running", 2),
    Case("rollback", (("provision", {}), ("update", {})), {}, "Running", 3),
    Case("destroy", (("provision", {}),), {}, None, 1),
]
SETTLED_PHASE = {"provision": "Running", "update": "Running", "pause": "Paused"}


@pytest.fixture
async def kill_gateway(platform: Kube, sqlite_database: Database,
                       ) -> AsyncIterator[GatewayUnderTest]:
    under_test = await serve_gateway(platform, sqlite_database)
    try:
        yield under_test
    finally:
        await under_test.close()


class OwnOperator:
    """The dedicated operator: one process at a time, each with a higher peering priority."""

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        self.priorities = itertools.count(BASE_PRIORITY)
        self.process = OperatorProcess(kubeconfig, workdir, resync_seconds=1.0)
        self.started = 0

    def start_next(self) -> None:
        self.process.extra_args = ("--peering", PEERING_NAME, "--priority",
                                   str(next(self.priorities)))
        self.started += 1
        self.process.start()


@pytest.fixture(scope="module")
def own_operator(operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory,
                 ) -> Iterator[OwnOperator]:
    """Started on first use by a test (so the session operator's pause is awaited there)."""
    own = OwnOperator(operator.kubeconfig, tmp_path_factory.mktemp("own-operator"))
    yield own
    own.process.stop()


@pytest.fixture(scope="module")
async def session_operator_resumes(platform: Kube, operator: OperatorProcess,
                                   own_operator: OwnOperator) -> AsyncIterator[None]:
    """After the module: stop ours, remove every record of ours, see the session's resume."""
    resumed_before = _count(operator, "Resuming operations")
    yield
    own_operator.process.stop()
    if not own_operator.started:
        return
    stale = {peer: None for peer, info in (await _peers(platform)).items()
             if int(info.get("priority", 0)) >= BASE_PRIORITY}
    if stale:
        await platform.patch(CLUSTER_PEERINGS, PEERING_NAME, {"status": stale})
    await eventually(lambda: _async(_count(operator, "Resuming operations")),
                     lambda n: n > resumed_before, within=90, what="session operator resumed")


def _count(op: OperatorProcess, text: str) -> int:
    try:
        return op.log.read_text(errors="replace").count(text)
    except OSError:
        return 0


async def _peers(kube: Kube) -> dict[str, Obj]:
    return dict((await kube.get(CLUSTER_PEERINGS, PEERING_NAME)).get("status") or {})


async def _revisions(kube: Kube, name: str) -> list[Obj]:
    items: list[Obj] = (await kube.list(r.CONTROLLERREVISIONS, PLATFORM_NAMESPACE,
                                        label_selector=f"{names.LABEL_EXOCORP}={name}"))["items"]
    return items


async def _max_revision(kube: Kube, name: str) -> int:
    return max((int(rev["revision"]) for rev in await _revisions(kube, name)), default=0)


async def _acting(kube: Kube, case: Case, name: str, before_max: int) -> bool:
    """True once the operator has started carrying the action out."""
    ns = names.runtime_namespace(name)
    if case.action == "destroy":
        body = await kube.get_or_none(r.EXOCORPS, name)
        return body is None or bool((body.get("status") or {}).get("phase") == "Destroying")
    if case.action in ("stop", "pause", "resume"):
        component = "portal" if case.action == "stop" else "agents"
        deployment = await kube.get_or_none(r.DEPLOYMENTS, component, ns)
        replicas = (deployment or {}).get("spec", {}).get("replicas")
        return bool(replicas == (2 if case.action == "resume" else 0))
    return await _max_revision(kube, name) > before_max


def _unfinished(case: Case, body: Obj | None, expected_max: int) -> bool:
    """Was the action still in progress when the operator was killed?"""
    if body is None:
        return False
    exo = Exocorp.model_validate(body)
    if case.action == "destroy":
        return True
    if (exo.status.observed_generation or 0) < (exo.metadata.generation or 0):
        return True
    rollout = exo.status.rollout
    if rollout is None or rollout.number < expected_max:
        return True
    return rollout.outcome == RevisionOutcome.PROGRESSING or exo.status.phase != case.phase


async def _managed_objects(kube: Kube, ns: str) -> set[tuple[str, str]]:
    found = set()
    for resource in RUNTIME_KINDS:
        for obj in (await kube.list(resource, ns, label_selector=MANAGED))["items"]:
            if not obj["metadata"].get("deletionTimestamp"):
                found.add((resource.kind, obj["metadata"]["name"]))
    return found


def _expected_objects(exo: Exocorp, release: ExocorpReleaseSpec) -> set[tuple[str, str]]:
    """The runtime objects the builders make for ``exo`` in its namespace (names only)."""
    settings = OperatorSettings(namespace=PLATFORM_NAMESPACE)
    assert exo.status.rollout is not None
    inputs = builders.RuntimeInputs(release=release, revision=exo.status.rollout.revision,
                                    credentials={}, settings=settings)
    return {(o["kind"], o["metadata"]["name"]) for o in builders.runtime_objects(exo, inputs)
            if o["kind"] != "Namespace"}


async def _audit(gateway: GatewayUnderTest, slug: str) -> list[AuditEvent]:
    async with gateway.database.sessionmaker() as s:
        return list((await s.execute(select(AuditEvent).where(AuditEvent.exocorp_id == slug)
                                     .order_by(AuditEvent.id))).scalars().all())


async def _request(api: Api, slug: str, action: str, body: Obj) -> None:
    if action == "destroy":
        await api.ok("DELETE", f"/api/registry/companies/{slug}", 202, json={"confirm": slug})
    else:
        await api.ok("POST", f"/api/registry/companies/{slug}/{action}", 202, json=body)


@pytest.mark.parametrize("case", CASES, ids=[c.action for c in CASES])
async def test_operator_sigkilled_mid_action_converges_without_duplicates_or_orphans(
    case: Case, kill_gateway: GatewayUnderTest, operator: OperatorProcess,
    own_operator: OwnOperator, session_operator_resumes: None,
) -> None:
    kube = kill_gateway.kube
    own = own_operator.process
    if own.process is None or not own.process.alive():
        paused_before = _count(operator, "Pausing operations in favour of")
        own_operator.start_next()
        # The session's operator steps aside before anything happens.
        await eventually(lambda: _async(_count(operator, "Pausing operations in favour of")),
                         lambda n: n > paused_before, within=60,
                         what="session operator paused")
    api = kill_gateway.client()
    user = await api.signup()
    slug = unique_slug(f"k{case.action[:5]}")
    await api.ok("POST", "/api/registry/companies", 201,
                 json={"slug": slug, "displayName": "Kill Inc"})
    await api.ok("POST", f"/api/registry/companies/{slug}/draft", 201,
                 json={"draft": sample_draft("1.0.0")})
    await api.ok("POST", "/api/registry/provider-secrets", 201,
                 json={"provider": "anthropic", "name": "main", "value": CANARY_SECRET})
    waiter = Driver(kube, "unused")
    await waiter.wait(slug, "Draft")
    for action, body in case.before:
        await _request(api, slug, action, body)
        await waiter.settled(slug)
        await waiter.wait(slug, SETTLED_PHASE[action])

    before_max = await _max_revision(kube, slug)
    await _request(api, slug, case.action, case.body)
    await eventually(lambda: _acting(kube, case, slug, before_max), interval=0.02,
                     within=60, what=f"operator acting on {case.action}")
    own.kill()
    unfinished = _unfinished(case, await kube.get_or_none(r.EXOCORPS, slug), case.rollouts)
    restarted = time.monotonic()
    own_operator.start_next()

    if case.phase is None:
        async def leftovers() -> list[str]:
            left = []
            if await kube.get_or_none(r.EXOCORPS, slug) is not None:
                left.append("exocorp")
            if await kube.get_or_none(r.NAMESPACES, names.runtime_namespace(slug)):
                left.append("namespace")
            left += [rev["metadata"]["name"] for rev in await _revisions(kube, slug)]
            return left

        await eventually(leftovers, lambda left: left == [], within=180,
                         what="exocorp, namespace and revisions gone")
        converged = time.monotonic() - restarted
        claims = [c for c in (await kube.list(r.PVCS))["items"]
                  if c["metadata"]["namespace"] == names.runtime_namespace(slug)]
        assert claims == []
    else:
        exo = await _converged(waiter, slug, case)
        converged = time.monotonic() - restarted
        await _check_revisions(kube, exo, case)
        release = ExocorpReleaseSpec.model_validate(
            (await kube.get(r.RELEASES, f"release-{case.version.replace('.', '-')}"))["spec"])

        async def objects() -> set[tuple[str, str]]:
            return await _managed_objects(kube, names.runtime_namespace(slug))

        want = _expected_objects(exo, release)
        await eventually(objects, lambda found: found == want, within=60,
                         what="exactly the builders' objects")

    events = await _audit(kill_gateway, slug)
    accepted = [e for e in events if e.outcome.value == "succeeded"
                and e.action not in ("company.create", "draft.save")]
    assert [e.action for e in accepted] == [a for a, _ in case.before] + [case.action]
    last = accepted[-1]
    assert last.actor_id == user["user"]["id"]
    if case.phase is not None:
        _check_agrees_with_audit(exo, case, last)
    print(f"\nFIGURE kill mid-{case.action}: unfinished at kill={unfinished}, "
          f"converged {converged:.1f}s after restart")


async def _converged(waiter: Driver, slug: str, case: Case) -> Exocorp:
    """The action's phase reached, the generation observed, and the rollout the test asked for
    (no later one) succeeded."""
    def done(exo: Exocorp) -> bool:
        rollout = exo.status.rollout
        return (exo.status.observed_generation or 0) >= (exo.metadata.generation or 0) \
            and exo.status.phase == case.phase and rollout is not None \
            and rollout.number == case.rollouts and rollout.outcome == RevisionOutcome.SUCCEEDED

    async def probe() -> Exocorp:
        return await waiter.get(slug)

    return await eventually(probe, done, within=180, what=f"{slug} converged after the kill")


async def _async(value: int) -> int:
    return value


async def _check_revisions(kube: Kube, exo: Exocorp, case: Case) -> None:
    name = exo.metadata.name
    revisions = await _revisions(kube, name)
    numbers = sorted(int(rev["revision"]) for rev in revisions)
    assert len(numbers) == len(set(numbers)), f"duplicate revision numbers {numbers}"
    assert numbers[-1] == case.rollouts, f"revision numbers {numbers}: a rollout was repeated"
    hashes = [rev["metadata"]["labels"][names.LABEL_CONTENT_HASH] for rev in revisions]
    assert len(hashes) == len(set(hashes)), "two revision objects with the same content"
    history = [h.number for h in exo.status.history]
    assert history == sorted(set(history), reverse=True), f"history {history}"
    assert exo.status.current_revision is not None
    assert exo.status.current_revision.number == case.rollouts
    assert exo.status.current_revision.name in {rev["metadata"]["name"] for rev in revisions}
    orphans = {rev["metadata"]["name"] for rev in revisions} - {h.name for h in exo.status.history}
    assert orphans == set(), "revision objects no history entry refers to"
    assert exo.status.history[0].outcome == RevisionOutcome.SUCCEEDED, exo.status.history
    assert exo.spec.release is not None
    assert exo.spec.release.version == case.version


def _check_agrees_with_audit(exo: Exocorp, case: Case, last: AuditEvent) -> None:
    assert case.phase is not None
    assert exo.status.phase == Phase(case.phase)
    assert exo.spec.last_action is not None
    assert exo.spec.last_action.action.value == last.action
    assert exo.spec.last_action.requested_by == f"user:{last.actor_id}"
    if case.action in ("provision", "update", "restart", "reprovision", "rollback"):
        head = exo.status.history[0]
        assert head.action is not None
        assert head.action.value == last.action
        assert head.requested_by == f"user:{last.actor_id}"
        assert head.number == case.rollouts
