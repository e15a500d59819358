"""What an exocorp requests (``exocorp.model.footprint``) is what the operator gives it: the
quota the operator sets is twice the figure, each missing request is defaulted as Kubernetes
does; paused agents and stopped exocorps request nothing, a stopped one keeps its volume."""

from __future__ import annotations

import pytest

from exocorp.model import ComponentSize, Exocorp, ExocorpReleaseSpec
from exocorp.model.footprint import Footprint, footprint, hourly_cost
from exocorp.model.quantity import format_bytes, format_cpu, parse_quantity
from exocorp.runtime.builders import resource_quota
from exocorp.testing import samples

pytestmark = pytest.mark.unit

MI = 2**20


def _exocorp(sizes: dict[str, str], **spec: object) -> Exocorp:
    body = samples.exocorp("acme", "usr_1")
    body["spec"].update({"provisioned": True,
                         "release": {"channel": "stable", "version": "1.0.0"},
                         "config": {"componentSizes": sizes}, **spec})
    return Exocorp.model_validate(body)


def _release(**agent: object) -> ExocorpReleaseSpec:
    spec = samples.release("1.0.0")["spec"]
    spec["components"][2].update(agent)
    return ExocorpReleaseSpec.model_validate(spec)


@pytest.mark.parametrize("agents", [
    {}, {"resources": {"requests": {"cpu": "750m", "memory": "300Mi"},
                       "limits": {"cpu": "1", "memory": "1Gi"}}},
    {"resources": {"requests": {"cpu": "250m"}}}, {"resources": {"limits": {"memory": "1Gi"}}}])
@pytest.mark.parametrize("sizes", [{}, {"agents": "large"}, {"portal": "medium"}])
def test_requests_are_half_the_quota_the_operator_sets(agents: dict[str, object],
                                                       sizes: dict[str, str]) -> None:
    exocorp, release = _exocorp(sizes), _release(**agents)
    hard = resource_quota(exocorp, release)["spec"]["hard"]
    mine = footprint(exocorp.spec, release)
    assert 2 * mine.cpu_millicores == parse_quantity(hard["requests.cpu"]) * 1000
    assert 2 * mine.memory_bytes == parse_quantity(hard["requests.memory"])
    assert mine.storage_bytes == 2**30


@pytest.mark.parametrize(("resources", "each"), [
    ({"requests": {"cpu": "750m"}}, (750, 256 * MI)),  # memory: the LimitRange's default
    ({"limits": {"cpu": "3", "memory": "3Gi"}}, (3000, 3072 * MI)),  # requests = limits
    ({"requests": {"memory": "100Mi"}, "limits": {"cpu": "1"}}, (1000, 100 * MI))])
def test_a_missing_request_is_defaulted_as_kubernetes_does(
        resources: dict[str, object], each: tuple[int, int]) -> None:
    agents = footprint(_exocorp({}).spec, _release(resources=resources))
    small = footprint(_exocorp({}).spec, _release())
    assert agents - small == Footprint(2 * each[0] - 200, 2 * each[1] - 512 * MI, 0)


def test_what_runs_in_each_state() -> None:
    release = _release()
    running = footprint(_exocorp({"agents": ComponentSize.MEDIUM}).spec, release)
    assert running == Footprint(100 + 100 + 2 * 500, (256 + 256 + 2 * 1024) * MI, 1024 * MI)
    asleep = {"paused": True, "pauseReason": "night"}
    paused = footprint(_exocorp({"agents": "medium"}, **asleep).spec, release)
    assert paused == Footprint(200, 512 * MI, 1024 * MI)
    stopped = footprint(_exocorp({}, stopped=True).spec, release)
    assert stopped == Footprint(0, 0, 1024 * MI)
    draft = Exocorp.model_validate(samples.exocorp("acme", "usr_1"))
    assert footprint(draft.spec, release) == Footprint()
    assert hourly_cost(_exocorp({}).spec, release, {"*": 1, "agents": 5}) == (1 + 1 + 10) * 3600
    assert hourly_cost(_exocorp({}, **asleep).spec, release, {"agents": 5}) == 0


def test_an_exponent_beyond_range_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_quantity("1e999999999999")


def test_quantities_are_shown_in_their_largest_exact_unit() -> None:
    assert [format_cpu(m) for m in (0, 1500, 2000)] == ["0", "1500m", "2"]
    assert [format_bytes(b) for b in (0, 1536 * MI, 16 * 2**30, 1000)] == [
        "0", "1536Mi", "16Gi", "1000"]
