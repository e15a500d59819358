"""exocorp.shards: the gateway's assignment of new exocorps to operator shards."""

from __future__ import annotations

from collections import Counter

import pytest

from exocorp import shards


def test_without_shards_every_exocorp_stays_with_the_default_shard() -> None:
    assert {shards.assign(f"exo-{i}", ()) for i in range(50)} == {None}


def test_assignment_is_stable_and_spreads_the_fleet() -> None:
    configured = shards.parse("default,blue,green")
    first = [shards.assign(f"exo-{i}", configured) for i in range(3000)]
    assert first == [shards.assign(f"exo-{i}", configured) for i in range(3000)]
    counts = Counter(first)
    assert set(counts) == {None, "blue", "green"}  # "default" means: no label
    assert min(counts.values()) > 800  # about a third each


@pytest.mark.parametrize("value", ["Blue", "a,a", "x" * 41, "bad_name", "-x"])
def test_bad_shard_lists_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="shard"):
        shards.parse(value)
