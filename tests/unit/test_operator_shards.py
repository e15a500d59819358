"""Operator shards: which objects a shard selects, and that an exocorp's runtime objects carry
its shard label (so each shard lists and watches only its own)."""

from __future__ import annotations

from exocorp import names
from exocorp.model import Exocorp, ExocorpReleaseSpec
from exocorp.operator.settings import OperatorSettings
from exocorp.runtime import builders
from exocorp.testing import samples


def _exo(shard: str | None) -> Exocorp:
    body = samples.exocorp("acme", "owner")
    body["metadata"]["uid"] = "u1"
    if shard:
        body["metadata"]["labels"] = {names.LABEL_SHARD: shard}
    body["spec"].update(provisioned=True, release={"version": "1.0.0", "channel": "stable"},
                        config=samples.draft("1.0.0")["config"])
    return Exocorp.model_validate(body)


def test_the_default_shard_selects_unlabelled_objects_and_a_named_shard_its_own() -> None:
    default, blue = OperatorSettings(), OperatorSettings(shard="blue")
    assert default.shard_selector() == "!exocorp.io/shard"
    assert blue.shard_selector("app.kubernetes.io/managed-by=exocorp") == \
        "app.kubernetes.io/managed-by=exocorp,exocorp.io/shard=blue"
    unlabelled = {"metadata": {"name": "a"}}
    labelled = {"metadata": {"name": "b", "labels": {names.LABEL_SHARD: "blue"}}}
    assert (default.owns(unlabelled), default.owns(labelled)) == (True, False)
    assert (blue.owns(unlabelled), blue.owns(labelled)) == (False, True)


def test_runtime_objects_and_pods_carry_the_exocorp_shard_but_selectors_do_not() -> None:
    release = ExocorpReleaseSpec.model_validate(samples.release("1.0.0")["spec"])
    inputs = builders.RuntimeInputs(release=release, revision="acme-1", credentials={},
                                    settings=OperatorSettings())
    component = release.components[0]
    labelled = builders.deployment(_exo("blue"), component, inputs)
    assert builders.namespace(_exo("blue"))["metadata"]["labels"][names.LABEL_SHARD] == "blue"
    assert labelled["metadata"]["labels"][names.LABEL_SHARD] == "blue"
    assert labelled["spec"]["template"]["metadata"]["labels"][names.LABEL_SHARD] == "blue"
    # The selector is immutable: moving an exocorp to another shard must not need a new one.
    assert names.LABEL_SHARD not in labelled["spec"]["selector"]["matchLabels"]
    unlabelled = builders.deployment(_exo(None), component, inputs)
    assert names.LABEL_SHARD not in unlabelled["metadata"]["labels"]
    assert names.LABEL_SHARD not in unlabelled["spec"]["template"]["metadata"]["labels"]
