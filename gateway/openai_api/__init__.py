"""OpenAI's audio API on top of the durable queue: `POST /v1/audio/transcriptions`, `POST /v1/audio/translations`
and `GET /v1/models`, in OpenAI's request and response shapes.

Each request becomes an ordinary job through `POST /jobs`' own submit path (`gateway.submit.accept`: the same
upload, limits, job record and idempotency); the handler then waits for the job and answers in the requested
format, or streams its segments as OpenAI's `transcript.text.delta` events.

- `errors`: OpenAI's error body, and the middleware that gives it to every refusal on `/v1/`.
- `request`: the OpenAI form fields, read into the job's language, task and decoding options.
- `models`: which model names are served; `GET /v1/models`.
- `answers`: a finished job in `json`, `text`, `srt`, `vtt` or `verbose_json`.
- `routes`: the handlers, waiting for the job (or streaming it) and cancelling it when the client leaves.
- `spec`: the routes' OpenAPI description.
"""
