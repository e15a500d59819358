"""Memory of the gateway's watch cache per exocorp, measured in-process with tracemalloc on
Running Exocorps and their revisions (ControllerRevisions) shaped like the API server's answers
(bench/operator_cache.py builds them), plus the RSS of the gateway's modules once imported. No
cluster: an estimate of the gateway's RSS with N exocorps cached, to check against
`bench/gateway.py --exocorps N` when a cluster is at hand.

Run: uv run python bench/gateway_cache.py [--n 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from operator_cache import fleet

from exocorp.api_gateway.app import create_app  # noqa: F401 (the gateway's imports)
from exocorp.api_gateway.watch_cache import WatchCache


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    imported_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    bodies = [(kind, json.dumps(body)) for kind, body in fleet(args.n)
              if kind in ("Exocorp", "ControllerRevision")]
    cache = WatchCache(None, platform_namespace="exocorp-system")  # type: ignore[arg-type]
    informers = {"Exocorp": cache.exocorps, "ControllerRevision": cache.revisions}
    tracemalloc.start()
    for kind, raw in bodies:
        informers[kind].observe(json.loads(raw))
    assert len(cache.exocorps) == len(cache.revisions) == args.n
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(json.dumps({
        "n": args.n, "gateway_modules_imported_rss_mib": round(imported_mib, 1),
        "watch_cache_mib": round(held / 2**20, 1),
        "watch_cache_kib_per_exocorp": round(held / args.n / 1024, 2),
        "estimated_rss_mib": round(imported_mib + held / 2**20, 1),
        "command": f"uv run python bench/gateway_cache.py --n {args.n}"}, indent=2))


if __name__ == "__main__":
    main()
