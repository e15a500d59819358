"""Models compacted for a long-lived cache (exocorp.model.compact, used by the gateway's watch
cache): the same values, dumps and copies as a plain parse, in fewer bytes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.model import Exocorp, Phase
from exocorp.model.compact import interned, share_fields_sets
from exocorp.testing import samples

pytestmark = pytest.mark.unit

Obj = dict[str, Any]
NOW = "2026-12-04T10:00:10Z"


def _running(name: str, rv: int = 5) -> Obj:
    """An Exocorp as the API server serves it: Running status, a writer's managedFields."""
    obj = samples.exocorp(name, "usr_1")
    obj["metadata"].update(resourceVersion=str(rv), generation=2, managedFields=[
        {"manager": "exocorp-gateway", "operation": "Update", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:owner": {}}}}])
    obj["spec"]["providerBindings"] = [{"provider": "anthropic", "secretName": "usr-1-anth"}]
    obj["status"] = {
        "phase": "Running", "observedGeneration": 2,
        "conditions": [{"type": t, "status": "True", "reason": "Available",
                        "message": "every component is available", "lastTransitionTime": NOW,
                        "observedGeneration": 2} for t in ("Ready", "Progressing")],
        "history": [{"name": f"{name}-6b7c9d", "number": 1, "version": "1.0.0",
                     "action": "provision", "requestedBy": "user:usr_1",
                     "outcome": "Succeeded", "createdAt": NOW, "finishedAt": NOW}],
        "domains": [{"host": f"{name}.portal.example", "kind": "portal",
                     "routing": "attached", "tls": "pending"}],
    }
    return obj


def _cached(*objs: Obj) -> WatchCache:
    cache = WatchCache(None, platform_namespace="exocorp-system")  # type: ignore[arg-type]
    for obj in objs:
        cache.exocorps.observe(json.loads(json.dumps(obj)))  # as decoded off the wire
    return cache


def test_a_cached_exocorp_reads_and_dumps_as_a_plain_parse() -> None:
    obj = _running("acme")
    plain = Exocorp.model_validate(obj)
    cached = _cached(obj).exocorp("acme")
    assert cached == plain
    assert cached is not None
    assert cached.status.phase is Phase.RUNNING
    for options in ({}, {"exclude_unset": True}, {"exclude_none": True}):
        assert cached.model_dump_json(by_alias=True, **options) == \
            plain.model_dump_json(by_alias=True, **options)
    assert cached.status.model_fields_set == plain.status.model_fields_set


def test_equal_strings_and_fields_sets_are_held_once_across_objects() -> None:
    cache = _cached(_running("acme"), _running("globex"))
    acme, globex = cache.exocorp("acme"), cache.exocorp("globex")
    assert acme is not None
    assert globex is not None
    assert acme.status.conditions[0].message is globex.status.conditions[0].message
    assert acme.status.conditions[0].__pydantic_fields_set__ is \
        globex.status.conditions[1].__pydantic_fields_set__


def test_copies_of_a_cached_model_are_private() -> None:
    cached = _cached(_running("acme")).exocorp("acme")
    assert cached is not None
    before = set(cached.spec.model_fields_set)
    edited = cached.model_copy(update={"spec": cached.spec.model_copy(update={"paused": True})})
    assert edited.spec.paused
    assert not cached.spec.paused
    assert cached.spec.model_fields_set == before
    deep = copy.deepcopy(cached)
    deep.spec.paused = True  # a deep copy is the caller's own, assignable again
    assert not cached.spec.paused


def test_assigning_to_a_cached_model_fails_loudly() -> None:
    """A cached model is shared by every request: changing it in place would show one caller's
    edit to all. Its shared fields sets make that an error instead of a silent leak."""
    cached = _cached(_running("acme")).exocorp("acme")
    assert cached is not None
    with pytest.raises(AttributeError):
        cached.spec.paused = True


def test_interned_keeps_the_value() -> None:
    value = {"a": ["x", 1, None, {"b": True, "c": 1.5}], "d": "y"}
    assert interned(value) == value


def test_share_fields_sets_reaches_models_in_lists() -> None:
    model = Exocorp.model_validate(_running("acme"))
    share_fields_sets(model)
    condition = model.status.conditions[0]
    assert type(condition.__pydantic_fields_set__).__name__ == "SharedFieldsSet"
