"""What `kubectl get` and `kubectl describe` show of exocorps and releases, read as a user
reads them: the READY column means "serving as asked", the events are listed in the order they
happened, the running time is there, and a release's channels read as a list, not as JSON."""

from __future__ import annotations

import itertools
import re
import uuid

import pytest

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.testing import samples
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import ClusterInfo
from tests.plugins.platform import Driver

pytestmark = pytest.mark.integration


def _row(output: str) -> dict[str, str]:
    """`kubectl get` output (one object) as {column: value}."""
    header, row = output.splitlines()[:2]
    return dict(zip(header.split(), row.split(), strict=False))


def _section(described: str, title: str) -> str:
    """The lines of one top-level section of `kubectl describe`."""
    match = re.search(rf"(?ms)^{title}:\n(.*?)(?=^\S|\Z)", described)
    assert match, f"no {title} in:\n{described}"
    return match.group(1)


async def test_get_and_describe_tell_an_exocorps_story_in_order(
        driver: Driver, cluster: ClusterInfo) -> None:
    name = await driver.running("kctl")
    assert _row(await cluster.run_kubectl("get", "exocorp", name))["READY"] == "True"

    described = await cluster.run_kubectl("describe", "exocorp", name)
    events = _section(described, "Events")
    transitions = re.findall(r"(\w+) -> (\w+)", events)
    assert transitions, events
    # Listed oldest first, each one starting where the one before ended.
    for before, after in itertools.pairwise(transitions):
        assert before[1] == after[0], events
    assert transitions[-1][1] == "Running"
    assert re.search(r"(?m)^\s+Running Seconds Total:\s+\d+$", described), described

    await driver.act(name, "pause", reason="quiet week")
    await driver.wait(name, "Paused")
    row = _row(await cluster.run_kubectl("get", "exocorp", name))
    assert (row["PHASE"], row["READY"]) == ("Paused", "False")



async def test_a_releases_channels_column_lists_its_channels_and_follows_an_edit(
        platform: Kube, cluster: ClusterInfo) -> None:
    version = f"7.{uuid.uuid4().int % 10_000}.0"
    created = await platform.apply(r.RELEASES, samples.release(version, ("beta", "canary")))
    name = created["metadata"]["name"]

    async def channels() -> str:
        return _row(await cluster.run_kubectl("get", "exocorprelease", name)).get("CHANNELS", "")

    await eventually(channels, lambda c: c == "beta,canary", within=60, what="CHANNELS column")
    await platform.patch(r.RELEASES, name, {"spec": {"channels": ["stable"]}})
    await eventually(channels, lambda c: c == "stable", within=60, what="CHANNELS after an edit")
    await platform.delete(r.RELEASES, name)
