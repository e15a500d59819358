"""How long the garbage collector's full pass stops a gateway holding N exocorps, before and
after ``exocorp.k8s.frozen_heap`` freezes the heap, and whether replaced cache entries leave
cyclic garbage (which a frozen heap would keep). In-process, no cluster: the watch cache fed N
Running Exocorps and their revisions shaped like the API server's (bench/operator_cache.py).

Run: uv run python bench/gc_pause.py [--n 10000]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from operator_cache import fleet

from exocorp.api_gateway.app import create_app  # noqa: F401 (the gateway's imports)
from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.k8s.frozen_heap import freeze_now


def _full_collections(times: int) -> list[float]:
    out = []
    for _ in range(times):
        started = time.perf_counter()
        gc.collect()
        out.append(round((time.perf_counter() - started) * 1e3, 3))
    return out


def run(n: int) -> dict[str, Any]:
    # Kept as JSON text, as the API server sends them: strings are not tracked objects.
    objects = [(kind, json.dumps(body)) for kind, body in fleet(n)
               if kind in ("Exocorp", "ControllerRevision")]
    cache = WatchCache(None, platform_namespace="exocorp-system")  # type: ignore[arg-type]
    informers = {"Exocorp": cache.exocorps, "ControllerRevision": cache.revisions}
    for kind, raw in objects:
        informers[kind].observe(json.loads(raw))
    gc.collect()
    tracked = len(gc.get_objects())
    before = _full_collections(3)
    frozen, _ = freeze_now()
    after = _full_collections(3)
    for kind, raw in objects:  # every entry replaced by a newer version, as a busy fleet does
        newer = json.loads(raw)
        newer["metadata"]["resourceVersion"] = str(10**9 + int(
            newer["metadata"].get("resourceVersion") or 0))
        informers[kind].observe(newer)
    still_frozen = gc.get_freeze_count()
    gc.unfreeze()
    cyclic_garbage = gc.collect()  # what replaced entries left that reference counting did not
    return {
        "exocorps": n, "tracked_objects": tracked,
        "full_collection_ms_before": before, "full_collection_ms_after_freeze": after,
        "frozen_objects": frozen,
        "frozen_objects_left_after_replacing_every_entry": still_frozen,
        "cyclic_garbage_objects_after_replacing_every_entry": cyclic_garbage,
        "command": f"uv run python bench/gc_pause.py --n {n}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    print(json.dumps(run(parser.parse_args().n), indent=2))


if __name__ == "__main__":
    main()
