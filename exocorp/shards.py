"""Which operator shard an exocorp belongs to: the gateway labels each new Exocorp with one
of the configured shards, chosen by a stable hash of its name, as Flux's sharding does.

The name ``default`` stands for the default shard, whose operator takes the Exocorps without a
shard label (so a platform that never configured shards, and every exocorp created before it
did, stays with the default shard). Moving an exocorp is a label change
(``kubectl label exocorp NAME exocorp.io/shard=OTHER --overwrite``): see docs/scaling.md."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

DEFAULT = "default"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


def parse(value: str) -> tuple[str, ...]:
    """``"default,blue"`` -> ``("default", "blue")``; raises ValueError on a bad name."""
    shards = tuple(part.strip() for part in value.split(",") if part.strip())
    for shard in shards:
        if not _NAME.match(shard):
            raise ValueError(f"invalid shard name {shard!r}: lowercase letters, digits and "
                             "'-', at most 40 characters")
    if len(set(shards)) != len(shards):
        raise ValueError("a shard is listed twice")
    return shards


def assign(name: str, shards: Sequence[str]) -> str | None:
    """The shard label for a new exocorp ``name``; None for the default shard (no label).
    CRC-32 is stable across processes and versions, unlike Python's ``hash``."""
    if not shards:
        return None
    shard = shards[zlib.crc32(name.encode()) % len(shards)]
    return None if shard == DEFAULT else shard
