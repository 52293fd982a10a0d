"""The jetscribe HTTP gateway: REST API, Server-Sent Events, OpenAPI + Swagger UI, health and metrics."""
