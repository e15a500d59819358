"""The unit tier's fixtures: the gateway's (tests/plugins/gateway.py) and the operator's API
server (tests/plugins/api_server.py). Bound here, not in the root plugin list, because the
integration tier has a ``gateway`` fixture of its own."""

from tests.plugins.api_server import api_client, api_server
from tests.plugins.gateway import gateway, gateway_db_template, make_gateway

__all__ = ["api_client", "api_server", "gateway", "gateway_db_template", "make_gateway"]
