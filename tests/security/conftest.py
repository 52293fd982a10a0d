"""Security tests use the gateway fixtures: the real gateway on loopback, on a real nats-server."""

from tests.gateway.conftest import gateway, http, served, start_gateway  # noqa: F401
