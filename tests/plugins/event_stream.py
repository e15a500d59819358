"""Reading the gateway's event streams (text/event-stream) in tests, as a browser's EventSource
would: block by block, comments and the retry field skipped. No tests here."""

from __future__ import annotations

import asyncio
import json
from typing import Any

Obj = dict[str, Any]


async def next_block(response: Any, hang: float) -> bytes:
    """The next block up to its blank line (what is left at the end of the body); ``hang``
    guards against a read that never ends (a failure, not a speed threshold)."""
    block: bytes = await asyncio.wait_for(response.content.readuntil(b"\n\n"), hang)
    return block


def parse_event(block: bytes) -> tuple[str, Obj] | None:
    """The event a block carries (its name and JSON data), or None for comments and the retry
    field alone."""
    fields = dict(line.split(": ", 1) for line in block.decode().strip().split("\n")
                  if not line.startswith(":") and ": " in line)
    if "event" not in fields:
        return None
    return fields["event"], json.loads(fields["data"])
