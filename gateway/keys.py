"""Typed keys of the gateway application's state (`app[KEY]`)."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from nats.aio.client import Client
from nats.js import JetStreamContext

from gateway.fanout import JobEventHub
from gateway.joblist.index import JobListIndex
from gateway.joblist.pages import JobListReader
from gateway.metrics import GatewayMetrics
from gateway.tenants import Tenancy
from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.offer import OfferReader
from jetscribe.topology import Topology

SETTINGS: Final = web.AppKey("settings", Settings)
TENANCY: Final = web.AppKey("tenancy", Tenancy)
NC: Final = web.AppKey("nc", Client)
JS: Final = web.AppKey("js", JetStreamContext)
TOPOLOGY: Final = web.AppKey("topology", Topology)
JOB_STORE: Final = web.AppKey("job_store", JobStore)
HUB: Final = web.AppKey("hub", JobEventHub)
JOB_LIST: Final = web.AppKey("job_list", JobListIndex)
JOB_LIST_READER: Final = web.AppKey("job_list_reader", JobListReader)
OFFERS: Final = web.AppKey("offers", OfferReader)
METRICS: Final = web.AppKey("metrics", GatewayMetrics)
OPENAPI: Final = web.AppKey("openapi", dict[str, Any])
