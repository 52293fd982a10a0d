"""Webhook delivery: signed (Standard Webhooks), retried through the broker, shared by all gateways."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway import keys
from gateway.webhooks.delivery import WebhookDelivery, consumer_config
from gateway.webhooks.signing import signature, signing_key, webhook_headers

__all__ = ["WebhookDelivery", "consumer_config", "signature", "signing_key", "webhook_ctx", "webhook_headers"]


async def webhook_ctx(app: web.Application) -> AsyncIterator[None]:
    """aiohttp cleanup context: runs webhook delivery for the app's lifetime.

    Needs `keys.SETTINGS`, `keys.JS` and `keys.JOB_STORE` set by an earlier cleanup context.
    """
    async with WebhookDelivery(app[keys.SETTINGS], app[keys.JS], app[keys.JOB_STORE]):
        yield
