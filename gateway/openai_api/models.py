"""Which model a request to the OpenAI-compatible routes names, and `GET /v1/models`.

The models on offer are those that live workers serve (their heartbeats), plus OpenAI's own `whisper-1`, the name
OpenAI's clients send by default, which means the service's default model. Until jobs can choose a model, every
accepted name runs on the served model; `served_model` is the one place that decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aiohttp import web

from gateway.errors import OpenAIError
from gateway.health import live_workers
from schemas import WorkerHeartbeat, encode
from schemas.openai_api import Model, ModelList

OPENAI_DEFAULT_MODELS: Final = ("whisper-1",)
"""Model names OpenAI's clients send by default; each means this service's default model."""
OWNER: Final = "jetscribe"
RETRY_AFTER_S: Final = 5


async def serving_workers(app: web.Application) -> list[WorkerHeartbeat]:
    """The live workers; 503 in OpenAI's shape when there is none (a job would wait for one indefinitely)."""
    workers = await live_workers(app)
    if not workers:
        raise OpenAIError(
            503,
            "no transcription worker is running (none has sent a heartbeat recently): start one "
            "(`jetscribe worker`) or retry shortly",
            code="no_worker",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return workers


def offered(workers: Sequence[WorkerHeartbeat]) -> list[str]:
    """Every model name a request may give: the served models, then OpenAI's default names."""
    served = sorted({w.model for w in workers})
    return [*served, *OPENAI_DEFAULT_MODELS]


def served_model(requested: str, workers: Sequence[WorkerHeartbeat]) -> str | None:
    """The model a request for `requested` runs on: None for the service's default (OpenAI's default names, or the
    served model's own name); 400 in OpenAI's shape listing the models on offer for any other name."""
    name = requested.strip()
    if not name:
        raise OpenAIError(
            400, "the request has no `model`: give `whisper-1` or one of " + ", ".join(offered(workers)), param="model"
        )
    if name in OPENAI_DEFAULT_MODELS or name in {w.model for w in workers}:
        return None
    raise OpenAIError(
        400,
        f"the model {name!r} is not served here: use one of {', '.join(offered(workers))}",
        param="model",
        code="model_not_found",
    )


async def list_models(request: web.Request) -> web.Response:
    """`GET /v1/models`: the served models and OpenAI's default names, in OpenAI's list shape."""
    workers = await live_workers(request.app)
    started: dict[str, int] = {}
    for worker in workers:
        since = int(worker.started_at.timestamp())
        started[worker.model] = min(started.get(worker.model, since), since)
    earliest = min(started.values(), default=0)
    data = [Model(id=name, created=started[name], owned_by=OWNER) for name in sorted(started)]
    if workers:
        data += [Model(id=name, created=earliest, owned_by=OWNER) for name in OPENAI_DEFAULT_MODELS]
    return web.Response(body=encode(ModelList(data=data)), content_type="application/json")
