"""GET /openapi.json (valid OpenAPI 3.1, generated from the schemas) and GET /docs (Swagger UI, no CDN)."""

from __future__ import annotations

import re

import aiohttp
from openapi_spec_validator import validate

from tests.gateway.conftest import StartGateway


async def fetch_spec(http: aiohttp.ClientSession) -> dict:
    async with http.get("/openapi.json") as response:
        assert response.status == 200
        return await response.json()


async def test_openapi_document_is_valid_openapi_3_1(http: aiohttp.ClientSession) -> None:
    spec = await fetch_spec(http)
    assert spec["openapi"].startswith("3.1")
    validate(spec)


async def test_openapi_document_describes_every_route_of_the_contract(http: aiohttp.ClientSession) -> None:
    paths = (await fetch_spec(http))["paths"]
    assert set(paths["/jobs"]) >= {"post", "get"}
    assert set(paths["/jobs/{job_id}"]) >= {"get", "delete"}
    assert "get" in paths["/jobs/{job_id}/stream"]
    assert "get" in paths["/jobs/{job_id}/transcript"]
    assert "get" in paths["/health"]


async def test_openapi_job_schema_comes_from_the_wire_contract(http: aiohttp.ClientSession) -> None:
    components = (await fetch_spec(http))["components"]["schemas"]
    job = components["Job"]
    assert set(job["properties"]) >= {"id", "status", "language", "task", "progress", "segments", "error"}
    assert set(job["properties"]["status"]["enum"]) == {"queued", "running", "diarizing", "done", "failed", "cancelled"}
    assert "ErrorBody" in components and "StreamDone" in components


async def test_openapi_document_is_still_valid_with_api_keys(start_gateway: StartGateway) -> None:
    _, http = await start_gateway(api_keys=("k",))
    spec = await fetch_spec(http)
    validate(spec)
    assert spec["paths"]["/jobs"]["post"]["security"] == [{"bearer": []}]


async def test_docs_page_loads_swagger_ui_from_the_gateway_itself(http: aiohttp.ClientSession) -> None:
    async with http.get("/docs") as response:
        page = await response.text()
    assert response.status == 200
    assert response.content_type == "text/html"
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))]
    for source in sources:
        async with http.get(f"/{source}") as asset:
            assert asset.status == 200, source
            body = await asset.read()
            assert body, source


async def test_swagger_ui_bundle_is_served(http: aiohttp.ClientSession) -> None:
    async with http.get("/docs/assets/swagger-ui/swagger-ui-bundle.js") as response:
        body = await response.read()
    assert response.status == 200
    assert "javascript" in response.content_type
    assert b"SwaggerUIBundle" in body
