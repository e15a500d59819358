"""Mixed load on the real gateway, and the proof that nothing was lost or applied twice.

Used by ``bench/load.py`` (200 clients, 60 s, 200 exocorps) and by
``tests/integration/test_gateway_load.py`` (the same invariants at a reduced scale).

1. :func:`provision_fleet`: accounts sign up over HTTP, each stores a provider credential,
   creates its exocorps with a draft and provisions them; then every exocorp is Running.
2. :func:`run_load`: N clients (closed loop, no think time), each acting for one account, for a
   fixed time: mostly reads (company detail, fleet, dashboard, handshake, release, identity) and
   a share of lifecycle actions chosen from the phase the client last saw (plus a share chosen
   blindly, which the API must refuse with 409 when they do not apply). Every request carries its
   own ``X-Request-Id`` and every action a unique ``reason``, so each one can be found again in
   the audit trail and in ``spec.lastAction``.
3. :func:`verify`: after the operator has settled, checks
   - no 5xx and no request without an answer;
   - audit: one ``succeeded`` event per accepted (2xx) action, matched by request id, with the
     same action, exocorp and reason; one ``refused`` event per 4xx action; nothing else;
   - exactly once: each accepted action is one spec write, so per exocorp
     ``final generation - initial generation == accepted actions (+ the operator's own
     automatic rollbacks, from the audit trail)``, and the operator observed the final one;
   - final state: ``spec.lastAction`` is the last accepted action (its reason; no accepted
     action on that exocorp began after it was answered), the spec shows that action's effect
     (paused/stopped/version/restartAt) and the settled phase agrees with the spec.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiohttp

from exocorp.k8s import ApiError, Kube
from exocorp.k8s import resources as r
from exocorp.model import OPERATOR_ACTOR, Exocorp
from exocorp.model.phase import rollout_in_progress
from exocorp.stats import percentile
from exocorp.testing import samples

__all__ = [
    "ACTIONS",
    "Account",
    "LoadConfig",
    "Sample",
    "Verdict",
    "login_token",
    "provision_fleet",
    "run_load",
    "settle",
    "snapshot",
    "summarise",
    "verify",
]

ACTIONS = ("provision", "update", "restart", "stop", "pause", "resume", "reprovision",
           "rollback")
"""The lifecycle actions a member may run (destroy is left out: it ends the exocorp)."""
SETTLED_PHASES = frozenset({"Running", "Paused", "Stopped", "Failed"})
READS: Sequence[tuple[str, int]] = (
    ("company", 45), ("my_companies", 20), ("dashboard", 15), ("handshake", 10),
    ("release_current", 5), ("me", 5))
PASSWORD = "load test password 42"  # noqa: S105 (throwaway accounts)
SESSION_COOKIE = "exocorp_session"  # the cookie's name with --no-cookie-secure

Obj = dict[str, Any]
Say = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


@dataclass
class Account:
    email: str
    user_id: str
    token: str
    exocorps: list[str] = field(default_factory=list)


@dataclass
class Sample:
    """One request of the load: what was asked and what came back."""

    client: int
    kind: str
    """``read`` or ``action``."""
    op: str
    """The read's name or the action."""
    exocorp: str | None
    request_id: str
    started: float
    ended: float = 0.0
    status: int = 0
    """0: no answer (a client-side error or timeout)."""
    code: str | None = None
    """The problem's ``code`` of a non-2xx answer."""
    reason: str | None = None
    details: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.ended - self.started

    @property
    def accepted(self) -> bool:
        return self.kind == "action" and 200 <= self.status < 300


@dataclass(frozen=True)
class LoadConfig:
    clients: int = 200
    seconds: float = 60.0
    action_share: float = 0.2
    """Share of requests that are lifecycle actions."""
    blind_share: float = 0.15
    """Share of actions chosen without looking at the phase (most must be refused)."""
    seed: int = 1
    base_version: str = "1.0.0"
    update_version: str = "1.1.0"


@dataclass
class Verdict:
    problems: list[str]
    checks: dict[str, Any]


def _headers(token: str, request_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if request_id:
        headers["X-Request-Id"] = request_id
    return headers


async def _json(http: aiohttp.ClientSession, method: str, url: str, expect: int,
                **kwargs: Any) -> Any:
    async with http.request(method, url, **kwargs) as response:
        text = await response.text()
        if response.status != expect:
            raise AssertionError(f"{method} {url}: {response.status} {text[:500]}")
        return await response.json(content_type=None) if text else None


async def _signup(http: aiohttp.ClientSession, base: str, email: str) -> Account:
    async with http.post(f"{base}/api/auth/signup",
                         json={"email": email, "password": PASSWORD}) as response:
        body = await response.json(content_type=None)
        if response.status != 201:
            raise AssertionError(f"signup {email}: {response.status} {body}")
        token = response.cookies[SESSION_COOKIE].value
    me = await _json(http, "GET", f"{base}/api/auth/me", 200, headers=_headers(token))
    return Account(email=email, user_id=me["user"]["id"], token=token)


async def login_token(http: aiohttp.ClientSession, base: str, email: str, password: str) -> str:
    async with http.post(f"{base}/api/auth/login",
                         json={"email": email, "password": password}) as response:
        if response.status != 200:
            raise AssertionError(f"login {email}: {response.status} {await response.text()}")
        return response.cookies[SESSION_COOKIE].value


async def _gather_limited(jobs: Sequence[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def provision_fleet(kube: Kube, http: aiohttp.ClientSession, base: str, *, tag: str,
                          accounts: int, exocorps: int, within: float = 900.0,
                          say: Say = _quiet) -> list[Account]:
    """Sign up ``accounts`` users and give them ``exocorps`` exocorps (round robin), each
    created with a draft and provisioned over HTTP; return once every one is Running with its
    generation observed."""
    t0 = time.monotonic()
    fleet: list[Account] = await _gather_limited(
        [partial(_signup, http, base, f"{tag}-{a}@example.com") for a in range(accounts)], 8)
    say(f"{accounts} accounts signed up in {time.monotonic() - t0:.1f}s")

    async def credential(account: Account) -> None:
        await _json(http, "POST", f"{base}/api/registry/provider-secrets", 201,
                    headers=_headers(account.token),
                    json={"provider": "anthropic", "name": "main", "value": f"sk-{tag}"})

    await _gather_limited([partial(credential, a) for a in fleet], 8)
    for k in range(exocorps):
        fleet[k % accounts].exocorps.append(f"{tag}-{k:03d}")

    async def create(account: Account, slug: str) -> None:
        await _json(http, "POST", f"{base}/api/registry/companies", 201,
                    headers=_headers(account.token),
                    json={"slug": slug, "displayName": slug,
                          "draft": samples.draft("1.0.0")})
        await _json(http, "POST", f"{base}/api/registry/companies/{slug}/provision", 202,
                    headers=_headers(account.token), json={"reason": "load setup"})

    await _gather_limited([partial(create, a, s) for a in fleet for s in a.exocorps], 16)
    say(f"{exocorps} exocorps created and provisioned in {time.monotonic() - t0:.1f}s")
    names = [slug for account in fleet for slug in account.exocorps]
    await settle(kube, names, within=within, say=say, want=frozenset({"Running"}))
    say(f"{exocorps} exocorps Running {time.monotonic() - t0:.1f}s after the first signup")
    return fleet


async def snapshot(kube: Kube, names: Sequence[str], *, attempts: int = 10) -> dict[str, Exocorp]:
    """The named Exocorps as the API server has them. A saturated API server may time out or
    answer 429/5xx for a while: that is retried, as any client of it would."""
    wanted = set(names)
    for attempt in range(attempts):
        try:
            items = (await kube.list_all(r.EXOCORPS))["items"]
            break
        except (TimeoutError, aiohttp.ClientError, ApiError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(2.0 * (attempt + 1))
    return {item["metadata"]["name"]: Exocorp.model_validate(item)
            for item in items if item["metadata"]["name"] in wanted}


def _phase(exo: Exocorp | None) -> str | None:
    return exo.status.phase.value if exo is not None and exo.status.phase else None


def _settled(exo: Exocorp, want: frozenset[str]) -> bool:
    return ((exo.status.observed_generation or 0) >= (exo.metadata.generation or 0)
            and exo.status.phase is not None and exo.status.phase.value in want
            and not rollout_in_progress(exo))


async def settle(kube: Kube, names: Sequence[str], *, within: float,
                 want: frozenset[str] = SETTLED_PHASES, say: Say = _quiet) -> float:
    """Wait until every named exocorp has its generation observed, no rollout in progress and
    a phase in ``want``; returns the seconds it took."""
    t0 = time.monotonic()
    last_report = t0
    while True:
        current = await snapshot(kube, names)
        pending = [n for n in names if n not in current or not _settled(current[n], want)]
        if not pending:
            return time.monotonic() - t0
        now = time.monotonic()
        if now - t0 > within:
            phases = Counter(_phase(current.get(n)) for n in pending)
            raise TimeoutError(f"{len(pending)} of {len(names)} exocorps not settled after "
                               f"{within:.0f}s: {dict(phases)}")
        if now - last_report > 30:
            say(f"  waiting: {len(pending)} of {len(names)} exocorps not settled yet")
            last_report = now
        await asyncio.sleep(2.0)


def _choose_action(phase: str | None, version: str | None, rng: random.Random,
                   config: LoadConfig) -> str | None:
    """What a user looking at ``phase`` would do; None: nothing to do now (read instead)."""
    if rng.random() < config.blind_share or phase is None:
        return rng.choice(ACTIONS)
    on_base = version == config.base_version
    weights: dict[str, float]
    if phase == "Running":
        weights = {"pause": 3, "stop": 2, "restart": 2, "update": 1.5 if on_base else 0,
                   "rollback": 0 if on_base else 1.5, "reprovision": 0.5}
    elif phase == "Paused":
        weights = {"resume": 5, "stop": 1.5, "restart": 1}
    elif phase == "Stopped":
        weights = {"provision": 6, "restart": 1.5}
    elif phase == "Failed":
        weights = {"restart": 1, "rollback": 1, "reprovision": 1, "stop": 1}
    elif phase in ("Starting", "Provisioning"):
        weights = {"stop": 1}
        if rng.random() < 0.7:
            return None
    else:
        return None
    names = [name for name, weight in weights.items() if weight > 0]
    return rng.choices(names, [weights[name] for name in names])[0]


async def run_load(http: aiohttp.ClientSession, base: str, fleet: Sequence[Account],
                   config: LoadConfig, *, tag: str) -> tuple[list[Sample], float]:
    """``config.clients`` clients for ``config.seconds``; returns every request and the
    elapsed seconds. Client ``i`` acts for account ``i mod len(fleet)`` on its exocorps."""
    samples_: list[Sample] = []
    seen: dict[str, tuple[str | None, str | None]] = {}
    read_names = [name for name, _ in READS]
    read_weights = [weight for _, weight in READS]
    deadline = time.monotonic() + config.seconds

    def look(company: Obj) -> None:
        release = company.get("release") or {}
        seen[company["id"]] = (company.get("phase"), release.get("version"))

    async def request(sample: Sample, method: str, path: str, token: str,
                      body: Obj | None = None) -> Obj | None:
        payload: Obj | None = None
        try:
            async with http.request(method, base + path, json=body,
                                    headers=_headers(token, sample.request_id)) as response:
                raw = await response.read()
                sample.status = response.status
                if raw and "json" in response.headers.get("Content-Type", ""):
                    try:
                        parsed = await response.json(content_type=None)
                    except ValueError:
                        parsed = None
                    if isinstance(parsed, dict):
                        payload = parsed
        except (aiohttp.ClientError, TimeoutError) as error:
            sample.error = f"{type(error).__name__}: {error}"
        sample.ended = time.perf_counter()
        if payload is not None and not 200 <= sample.status < 300:
            sample.code = payload.get("code")
        return payload

    async def client(i: int) -> None:
        rng = random.Random(config.seed * 1_000_003 + i)  # noqa: S311 (not a secret)
        account = fleet[i % len(fleet)]
        seq = 0
        while time.monotonic() < deadline:
            seq += 1
            exocorp = rng.choice(account.exocorps)
            request_id = f"{tag}-c{i}-{seq}"
            action = None
            if rng.random() < config.action_share:
                phase, version = seen.get(exocorp, (None, None))
                action = _choose_action(phase, version, rng, config)
            if action is not None:
                reason = f"{tag} c{i} #{seq}"
                body: Obj = {"reason": reason}
                if action == "update" and rng.random() < 0.7:
                    body["version"] = config.update_version
                sample = Sample(i, "action", action, exocorp, request_id, time.perf_counter(),
                                reason=reason)
                samples_.append(sample)
                answer = await request(sample, "POST",
                                       f"/api/registry/companies/{exocorp}/{action}",
                                       account.token, body)
                if sample.accepted and answer is not None:
                    sample.details = dict(answer.get("details") or {})
                    look(answer["company"])
                continue
            op = rng.choices(read_names, read_weights)[0]
            path = {
                "company": f"/api/registry/companies/{exocorp}",
                "my_companies": "/api/registry/my-companies",
                "dashboard": "/api/dashboard/summary",
                "handshake": f"/api/registry/companies/{exocorp}/update-handshake",
                "release_current": "/api/registry/company-releases/current",
                "me": "/api/auth/me",
            }[op]
            sample = Sample(i, "read", op, exocorp if op in ("company", "handshake") else None,
                            request_id, time.perf_counter())
            samples_.append(sample)
            answer = await request(sample, "GET", path, account.token)
            if answer is not None and sample.status == 200:
                if op == "company":
                    look(answer)
                elif op == "my_companies":
                    for company in answer.get("companies", []):
                        seen[company["id"]] = (company.get("phase"), (company.get("release")
                                                                      or {}).get("version"))

    t0 = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(config.clients)))
    return samples_, time.monotonic() - t0


def _percentile(values: Sequence[float], q: float) -> float | None:
    return percentile(values, q) if values else None


def _latency(samples_: Sequence[Sample]) -> dict[str, Any]:
    values = [s.latency for s in samples_ if s.status]

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {"count": len(samples_), "p50_ms": ms(_percentile(values, 0.5)),
            "p99_ms": ms(_percentile(values, 0.99)), "max_ms": ms(max(values, default=None)),
            "mean_ms": ms(statistics.fmean(values)) if values else None}


def summarise(samples_: Sequence[Sample], elapsed: float) -> dict[str, Any]:
    """Throughput, latency and counts of a run."""
    reads = [s for s in samples_ if s.kind == "read"]
    acts = [s for s in samples_ if s.kind == "action"]
    accepted = [s for s in acts if s.accepted]
    statuses = Counter(str(s.status) for s in samples_)
    return {
        "elapsed_seconds": round(elapsed, 2),
        "requests": len(samples_),
        "requests_per_second": round(len(samples_) / elapsed, 1),
        "reads_per_second": round(len(reads) / elapsed, 1),
        "actions_per_second": round(len(acts) / elapsed, 2),
        "accepted_actions_per_second": round(len(accepted) / elapsed, 2),
        "statuses": dict(sorted(statuses.items())),
        "reads": {**_latency(reads),
                  "by_op": dict(sorted(Counter(s.op for s in reads).items()))},
        "actions": {**_latency(acts), "accepted": len(accepted),
                    "accepted_latency": _latency(accepted),
                    "by_action": {
                        action: dict(sorted(Counter(str(s.status) for s in acts
                                                    if s.op == action).items()))
                        for action in ACTIONS},
                    "refusal_codes": dict(sorted(Counter(
                        str(s.code) for s in acts if 400 <= s.status < 500).items()))},
        "no_answer": len([s for s in samples_ if s.status == 0]),
        "server_errors_5xx": len([s for s in samples_ if s.status >= 500]),
    }


async def audit_events(http: aiohttp.ClientSession, base: str, token: str, *,
                       since: datetime) -> list[Obj]:
    """Every audit event since ``since``, oldest first, through the admin API."""
    events: list[Obj] = []
    cursor: str | None = None
    while True:
        params = {"since": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "order": "asc",
                  "limit": "500"}
        if cursor:
            params["cursor"] = cursor
        page = await _json(http, "GET", f"{base}/api/admin/audit", 200,
                           headers=_headers(token), params=params)
        events.extend(page["events"])
        cursor = page.get("nextCursor")
        if not cursor:
            return events


def _expected_phase(exo: Exocorp) -> str:
    if exo.spec.stopped:
        return "Stopped"
    return "Paused" if exo.spec.paused else "Running"


def verify(samples_: Sequence[Sample], events: Sequence[Obj], before: dict[str, Exocorp],
           after: dict[str, Exocorp], *, tag: str) -> Verdict:
    """The invariants of the module docstring; ``problems`` is empty when all hold."""
    problems: list[str] = []
    audit_problems: list[str] = []
    acts = [s for s in samples_ if s.kind == "action"]
    by_rid = {s.request_id: s for s in acts}
    accepted = [s for s in acts if s.accepted]

    # 1. Every request answered, none with a 5xx.
    for s in samples_:
        if s.status == 0 or s.status >= 500:
            problems.append(f"{s.op} {s.exocorp or ''} (request {s.request_id}): "
                            f"{s.status or s.error}")

    # 2. The audit trail: one event per action request, with the answer's outcome.
    ours = [e for e in events if (e.get("requestId") or "").startswith(f"{tag}-c")]
    lifecycle = [e for e in ours if e["action"] in ACTIONS]
    seen_rids = Counter(e["requestId"] for e in lifecycle)
    for rid, count in seen_rids.items():
        if count != 1:
            audit_problems.append(f"request {rid} has {count} audit events")
    outcome_of = {"succeeded": lambda st: 200 <= st < 300, "refused": lambda st: 400 <= st < 500,
                  "failed": lambda st: st >= 500}
    for event in lifecycle:
        sample = by_rid.get(event["requestId"])
        if sample is None:
            audit_problems.append(f"audit event {event['id']} for unknown request "
                                  f"{event['requestId']}")
            continue
        if not outcome_of[event["outcome"]](sample.status):
            audit_problems.append(f"request {sample.request_id} answered {sample.status} but "
                                  f"audited {event['outcome']}")
        if (event["action"], event.get("companyId"), event.get("reason")) != (
                sample.op, sample.exocorp, sample.reason):
            audit_problems.append(f"audit event {event['id']} says {event['action']} "
                            f"{event.get('companyId')} {event.get('reason')!r}; request "
                            f"{sample.request_id} was {sample.op} {sample.exocorp}")
    answered = [s for s in acts if s.status]
    for s in answered:
        if s.request_id not in seen_rids:
            audit_problems.append(f"request {s.request_id} ({s.op} {s.exocorp}, {s.status}) has no "
                            "audit event")
    other = [e for e in ours if e["action"] not in ACTIONS]
    if other:
        audit_problems.append(f"{len(other)} unexpected audit events of the load's requests: "
                        f"{Counter(e['action'] for e in other)}")
    problems.extend(audit_problems)
    succeeded_events = [e for e in lifecycle if e["outcome"] == "succeeded"]

    # 3. Exactly once: each accepted action is one spec write (one generation).
    per_exocorp: dict[str, list[Sample]] = defaultdict(list)
    for s in accepted:
        assert s.exocorp is not None
        per_exocorp[s.exocorp].append(s)
    system_writes: Counter[str] = Counter(
        str(e.get("companyId")) for e in events
        if (e.get("actor") or {}).get("kind") == "system" and e["action"] in ACTIONS
        and e["outcome"] == "succeeded" and e.get("companyId") in before)
    mismatched = 0
    for name, exo0 in before.items():
        exo = after.get(name)
        if exo is None:
            problems.append(f"{name} is gone")
            continue
        gen0, gen = exo0.metadata.generation or 0, exo.metadata.generation or 0
        want = gen0 + len(per_exocorp[name]) + system_writes[name]
        if gen != want:
            mismatched += 1
            problems.append(f"{name}: generation {gen0} -> {gen}, but {len(per_exocorp[name])} "
                            f"accepted actions and {system_writes[name]} automatic rollbacks")
        if (exo.status.observed_generation or 0) < gen:
            problems.append(f"{name}: generation {gen} not observed by the operator")

    # 4. The final state is the last accepted action's.
    consistent = 0
    for name, mine in per_exocorp.items():
        exo = after.get(name)
        if exo is None:
            continue
        last = exo.spec.last_action
        if last is None:
            problems.append(f"{name}: no lastAction after {len(mine)} accepted actions")
            continue
        if last.requested_by == OPERATOR_ACTOR:
            if not system_writes[name]:
                problems.append(f"{name}: lastAction by the operator, with no audit event")
            continue  # an automatic rollback came last: its own effect is checked by the operator
        winner = next((s for s in mine if s.reason == last.reason), None)
        if winner is None:
            problems.append(f"{name}: lastAction {last.action.value} {last.reason!r} is none of "
                            "its accepted actions")
            continue
        later = [s for s in mine if s.started > winner.ended]
        if later:
            problems.append(f"{name}: lastAction is request {winner.request_id}, but "
                            f"{later[0].request_id} was accepted after it was answered")
        spec = exo.spec
        ok = {
            "pause": spec.paused and spec.pause_reason == winner.reason,
            "resume": not spec.paused,
            "stop": spec.stopped,
            "provision": not spec.stopped,
            "restart": not spec.stopped and spec.restart_at == last.at,
            "update": spec.release is not None
            and spec.release.version == winner.details.get("toVersion"),
            "rollback": spec.release is not None
            and spec.release.version == winner.details.get("toVersion"),
            "reprovision": spec.release is not None
            and spec.release.version == winner.details.get("toVersion"),
        }[winner.op]
        if last.action.value != winner.op or not ok:
            problems.append(f"{name}: last accepted action {winner.op} ({winner.request_id}) "
                            f"is not what the spec shows: {spec.to_wire()}")
            continue
        phase = exo.status.phase.value if exo.status.phase else None
        if phase != _expected_phase(exo):
            problems.append(f"{name}: spec says {_expected_phase(exo)} (last action "
                            f"{winner.op}), settled phase is {phase}")
            continue
        consistent += 1
    for name in before:
        if name not in per_exocorp and name in after:
            phase = after[name].status.phase
            if phase is None or phase.value != _expected_phase(after[name]):
                problems.append(f"{name}: untouched but {phase}")

    checks = {
        "server_errors_5xx": len([s for s in samples_ if s.status >= 500]),
        "no_answer": len([s for s in samples_ if s.status == 0]),
        "accepted_actions": len(accepted),
        "refused_actions": len([s for s in acts if 400 <= s.status < 500]),
        "audit_succeeded_events": len(succeeded_events),
        "audit_refused_events": len([e for e in lifecycle if e["outcome"] == "refused"]),
        "audit_failed_events": len([e for e in lifecycle if e["outcome"] == "failed"]),
        "audit_matches_one_to_one": not audit_problems,
        "automatic_rollbacks": sum(system_writes.values()),
        "generation_delta_total": sum((after[n].metadata.generation or 0)
                                      - (before[n].metadata.generation or 0)
                                      for n in before if n in after),
        "exocorps_with_generation_mismatch": mismatched,
        "exocorps_acted_on": len(per_exocorp),
        "exocorps_final_state_consistent": consistent,
        "final_phases": dict(sorted(Counter(
            str(exo.status.phase.value if exo.status.phase else None)
            for exo in after.values()).items())),
        "final_versions": dict(sorted(Counter(
            str(exo.spec.release.version if exo.spec.release else None)
            for exo in after.values()).items())),
    }
    return Verdict(problems=problems, checks=checks)


def new_tag(prefix: str = "ld") -> str:
    """A short run id: slugs, e-mails, request ids and reasons of the run start with it."""
    return f"{prefix}{uuid.uuid4().hex[:5]}"


def utcnow() -> datetime:
    return datetime.now(UTC)
