"""The integration tier's gateway fixture (defined in tests/plugins/gateway_cluster.py). Bound
here, not in the root plugin list, because the unit tier has a ``gateway`` fixture of its own."""

from tests.plugins.gateway_cluster import gateway

__all__ = ["gateway"]
