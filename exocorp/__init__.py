"""Exocorp platform: run fleets of autonomous AI-agent companies on Kubernetes."""

from exocorp.lazy_kubernetes import install as _lazy_kubernetes_client

# Before anything imports kubernetes_asyncio (kopf does): see exocorp/lazy_kubernetes.py.
_lazy_kubernetes_client()

__version__ = "0.1.0"

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
"""Every service's log lines (the CLI's and the gateway supervisor's)."""
