"""The unit tier's gateway fixtures (defined in tests/plugins/gateway.py). Bound here, not in the
root plugin list, because the integration tier has a ``gateway`` fixture of its own."""

from tests.plugins.gateway import gateway, gateway_db_template, make_gateway

__all__ = ["gateway", "gateway_db_template", "make_gateway"]
