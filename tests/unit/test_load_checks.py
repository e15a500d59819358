"""The load run's checks (``exocorp.testing.load.verify``) catch what they claim to: a 5xx, an
action applied twice, an audit event missing or doubled, a final state that is not the last
accepted action's. Without these, a load test could pass by construction."""

from __future__ import annotations

from typing import Any

from exocorp.model import Exocorp
from exocorp.testing import load, samples

TAG = "ldtest"


def _exocorp(generation: int, phase: str, **spec: Any) -> Exocorp:
    body = samples.exocorp("exo-1", "user-1")
    body["metadata"]["generation"] = generation
    body["spec"].update({"provisioned": True, "config": samples.draft("1.0.0")["config"],
                         "release": {"channel": "stable", "version": "1.0.0"}, **spec})
    body["status"] = {"phase": phase, "observedGeneration": generation}
    return Exocorp.model_validate(body)


def _pause(seq: int, started: float, status: int = 202) -> load.Sample:
    return load.Sample(client=0, kind="action", op="pause", exocorp="exo-1",
                       request_id=f"{TAG}-c0-{seq}", started=started, ended=started + 1,
                       status=status, reason=f"{TAG} c0 #{seq}")


def _event(sample: load.Sample, outcome: str = "succeeded", event_id: int = 1) -> dict[str, Any]:
    return {"id": event_id, "requestId": sample.request_id, "action": sample.op,
            "companyId": sample.exocorp, "reason": sample.reason, "outcome": outcome,
            "actor": {"kind": "user", "id": "user-1"}}


def _scenario() -> tuple[list[load.Sample], list[dict[str, Any]], dict[str, Exocorp],
                         dict[str, Exocorp]]:
    """One accepted pause, one refused pause; the exocorp ends Paused by the accepted one."""
    accepted, refused = _pause(1, 10.0), _pause(2, 20.0, status=409)
    before = {"exo-1": _exocorp(2, "Running")}
    after = {"exo-1": _exocorp(3, "Paused", paused=True, pauseReason=accepted.reason,
                               lastAction={"action": "pause", "requestedBy": "user:user-1",
                                           "reason": accepted.reason,
                                           "at": "2030-01-01T00:00:00Z"})}
    return [accepted, refused], [_event(accepted), _event(refused, "refused", 2)], before, after


def test_a_consistent_run_passes() -> None:
    verdict = load.verify(*_scenario(), tag=TAG)
    assert verdict.problems == []
    assert verdict.checks["accepted_actions"] == verdict.checks["audit_succeeded_events"] == 1
    assert verdict.checks["exocorps_final_state_consistent"] == 1


def test_an_action_applied_twice_is_caught() -> None:
    samples_, events, before, after = _scenario()
    shown = after["exo-1"].spec.to_wire()
    doubled = {"exo-1": _exocorp(4, "Paused", paused=True, pauseReason=shown["pauseReason"],
                                 lastAction=shown["lastAction"])}
    problems = load.verify(samples_, events, before, doubled, tag=TAG).problems
    assert any("generation 2 -> 4" in p for p in problems)


def test_a_missing_or_doubled_audit_event_is_caught() -> None:
    samples_, events, before, after = _scenario()
    missing = load.verify(samples_, events[1:], before, after, tag=TAG)
    assert any("has no audit event" in p for p in missing.problems)
    assert not missing.checks["audit_matches_one_to_one"]
    doubled = load.verify(samples_, [*events, {**events[0], "id": 3}], before, after, tag=TAG)
    assert any("has 2 audit events" in p for p in doubled.problems)


def test_a_5xx_and_a_wrong_outcome_are_caught() -> None:
    samples_, events, before, after = _scenario()
    samples_[1].status = 500
    problems = load.verify(samples_, events, before, after, tag=TAG).problems
    assert any(": 500" in p for p in problems)
    assert any("answered 500 but audited refused" in p for p in problems)


def test_a_final_state_that_is_not_the_last_accepted_action_is_caught() -> None:
    samples_, events, before, after = _scenario()
    shown = after["exo-1"].spec.to_wire()
    later = _pause(3, 30.0)  # accepted after the one the spec shows was answered
    latest = {"exo-1": _exocorp(4, "Paused", paused=True, pauseReason=shown["pauseReason"],
                                lastAction=shown["lastAction"])}
    problems = load.verify([*samples_, later], [*events, _event(later, event_id=3)], before,
                           latest, tag=TAG).problems
    assert any("was accepted after it was answered" in p for p in problems)
    unpaused = {"exo-1": _exocorp(3, "Running", lastAction=shown["lastAction"])}
    problems = load.verify(samples_, events, before, unpaused, tag=TAG).problems
    assert any("is not what the spec shows" in p for p in problems)
