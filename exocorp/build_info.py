"""Metrics both processes export besides their own: the standard ``process_*`` series (CPU,
memory, open files, start time) and ``exocorp_build_info``, so a dashboard can tell which
version each replica runs (docs/monitoring.md)."""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector

from exocorp import __version__


def register_process_metrics(registry: CollectorRegistry, component: str) -> None:
    """Add ``process_*`` and ``exocorp_build_info{version, python_version, component}`` (always
    1) to ``registry``."""
    ProcessCollector(registry=registry)
    info = Gauge("exocorp_build_info",
                 "Always 1; the labels say which version of which component this process runs.",
                 ["version", "python_version", "component"], registry=registry)
    info.labels(version=__version__, python_version=platform.python_version(),
                component=component).set(1)
