"""``python -m exocorp.billing``: the metering service on its own (leader election, metering,
enforcement), for operations and for tests that kill a metering process.

    python -m exocorp.billing --kubeconfig ~/.kube/config --database-url postgresql://...

Settings come from the environment (see ``BillingSettings.from_env``); flags override them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from exocorp.billing.service import MeteringService, ensure_default_price_book
from exocorp.billing.settings import BillingSettings
from exocorp.k8s import Kube
from exocorp.store import database_url_from_env, open_database, upgrade_to_head


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m exocorp.billing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster)")
    parser.add_argument("--database-url", help="database (default: $DATABASE_URL)")
    parser.add_argument("--namespace", help="platform namespace ($EXOCORP_NAMESPACE)")
    parser.add_argument("--lease-name", help="metering Lease name")
    parser.add_argument("--identity", help="holder identity (default: <pod name>_<pid>)")
    parser.add_argument("--interval", type=float, help="seconds between metering passes")
    parser.add_argument("--lease-duration", type=float, help="lease duration, seconds")
    parser.add_argument("--renew-deadline", type=float, help="renew deadline, seconds")
    parser.add_argument("--retry-period", type=float, help="retry period, seconds")
    return parser


async def _main(args: argparse.Namespace) -> None:
    overrides: dict[str, Any] = {
        key: value for key, value in {
            "namespace": args.namespace, "lease_name": args.lease_name,
            "identity": args.identity, "interval_seconds": args.interval,
            "lease_duration_seconds": args.lease_duration,
            "renew_deadline_seconds": args.renew_deadline,
            "retry_period_seconds": args.retry_period,
        }.items() if value is not None
    }
    settings = BillingSettings.from_env(**overrides)
    database = open_database(args.database_url or database_url_from_env())
    kube = await Kube.connect(args.kubeconfig)
    try:
        await upgrade_to_head(database.engine)
        await ensure_default_price_book(database, settings)
        service = MeteringService(kube, database, settings)
        task = asyncio.create_task(service.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await kube.close()
        await database.dispose()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_main(_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
