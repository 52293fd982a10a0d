"""Which model a request to the OpenAI-compatible routes names, and `GET /v1/models`.

The models on offer are the service's own (`gateway.models`: those live workers serve, and those declared for
workers scaled to zero), plus OpenAI's `whisper-1`, the name OpenAI's clients send by default, which means the
service's default model. `served_model` is the one place that maps a request's `model` onto a job's.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway import keys
from gateway.errors import OpenAIError
from jetscribe.offer import ModelOffer
from schemas import encode
from schemas.openai_api import OpenAIModel, OpenAIModelList

OPENAI_DEFAULT_MODELS: Final = ("whisper-1",)
"""Model names OpenAI's clients send by default; each means this service's default model."""
OWNER: Final = "jetscribe"
RETRY_AFTER_S: Final = 5


async def current_offer(app: web.Application) -> ModelOffer:
    """The models on offer; 503 in OpenAI's shape when there is none (a job would wait for a worker indefinitely)."""
    offer = await app[keys.OFFERS].current()
    if not offer.models:
        raise OpenAIError(
            503,
            "no transcription worker is running (none has sent a heartbeat recently) and no model is declared: "
            "start one (`jetscribe worker`) or retry shortly",
            code="no_worker",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return offer


def offered(offer: ModelOffer) -> list[str]:
    """Every model name a request may give: the models on offer, then OpenAI's default names."""
    return [*offer.models, *OPENAI_DEFAULT_MODELS]


def served_model(requested: str, offer: ModelOffer) -> str | None:
    """The model a request for `requested` runs with: None for the service's default (OpenAI's default names), the
    name itself for a model on offer; 400 in OpenAI's shape listing the models on offer for any other name."""
    name = requested.strip()
    if not name:
        raise OpenAIError(
            400,
            "the request has no `model`: give `whisper-1` or one of " + ", ".join(offer.models),
            param="model",
            code="missing_required_parameter",
        )
    if name in OPENAI_DEFAULT_MODELS:
        return None
    if name in offer.models:
        return name
    raise OpenAIError(
        400,
        f"the model {name!r} is not served here: use one of {', '.join(offered(offer))}",
        param="model",
        code="model_not_found",
    )


async def list_models(request: web.Request) -> web.Response:
    """`GET /v1/models`: the models on offer and OpenAI's default names, in OpenAI's list shape."""
    offer = await request.app[keys.OFFERS].current()
    started: dict[str, int] = {}
    for worker in offer.workers:
        since = int(worker.started_at.timestamp())
        for served in worker.models:
            started[served.name] = min(started.get(served.name, since), since)
    earliest = min(started.values(), default=0)
    data = [OpenAIModel(id=name, created=started.get(name, earliest), owned_by=OWNER) for name in offer.models]
    if offer.models:
        data += [OpenAIModel(id=name, created=earliest, owned_by=OWNER) for name in OPENAI_DEFAULT_MODELS]
    return web.Response(body=encode(OpenAIModelList(data=data)), content_type="application/json")
