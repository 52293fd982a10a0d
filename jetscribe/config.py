"""Typed settings, read once per process from the environment.

The variables of the service jetscribe grew from keep their names (`PORT`, `LOG_LEVEL`,
`DATA_DIR`, `WHISPER_MODEL`, `WHISPER_MODEL_PATH`); every other one is the field name in upper
case with the `JETSCRIBE_` prefix (`nats_url` → `JETSCRIBE_NATS_URL`). Lists are comma-separated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from jetscribe.conversion import InvalidValueError, convert
from jetscribe.cpus import available_cpus
from jetscribe.errors import ConfigError
from schemas import names

ENV_PREFIX: Final = "JETSCRIBE_"
_KEPT_NAMES: Final = {
    "port": "PORT",
    "log_level": "LOG_LEVEL",
    "data_dir": "DATA_DIR",
    "whisper_model": "WHISPER_MODEL",
    "whisper_model_path": "WHISPER_MODEL_PATH",
}

Positive = Annotated[int, msgspec.Meta(gt=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
EngineKind = Literal["whispercpp", "ctranslate2"]
"""The Whisper engines a worker can run (worker/engine.py)."""
ENGINES: Final[tuple[EngineKind, ...]] = ("whispercpp", "ctranslate2")
ComputeType = Literal["auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "float16", "bfloat16", "float32"]
"""CTranslate2's compute types (ctranslate2 docs, "Quantization"); `auto` is `int8` on a CPU, `float16` on a GPU."""
GiB: Final = 1 << 30
MiB: Final = 1 << 20
DAY_S: Final = 86_400
HOUR_S: Final = 3_600


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting of every jetscribe component, with production defaults."""

    # HTTP gateway
    host: str = "0.0.0.0"
    """Address the gateway listens on."""
    port: Port = 8080
    """Port the gateway listens on."""
    log_level: LogLevel = "info"
    """debug, info, warning, error or critical."""
    max_upload_bytes: Positive = 2 * GiB
    """Largest audio upload `POST /jobs` accepts; larger ones get 413 and nothing is kept."""
    api_keys: tuple[str, ...] = ()
    """Bearer tokens the gateway accepts, all of the tenant `default`; with no keys here or in `tenants_file` the
    API is open."""
    tenants_file: Path | None = None
    """TOML file naming each tenant with the SHA-256 digests of its API keys (README, "Tenants"); a key sees only
    its tenant's jobs, an admin tenant's key every job."""
    max_queued_jobs_per_tenant: Positive | None = None
    """Queued jobs one tenant may have at once; the next submission gets 429 with Retry-After. Absent: only
    `max_queued_jobs` applies. A tenant's `max_queued_jobs` in `tenants_file` overrides it."""
    sse_heartbeat_s: PositiveFloat = 15.0
    """Interval of the comment lines that keep idle event streams open through proxies."""
    sse_recheck_s: PositiveFloat = 5.0
    """How often an event stream re-reads the job's state, so a missed terminal event never hangs it."""
    max_sse_clients: Positive = 10_000
    """Event streams one gateway holds open at once; the next client gets 503 with Retry-After."""
    request_timeout_s: PositiveFloat = 30.0
    """Time limit of every route but uploads and event streams; past it the answer is 503."""
    header_timeout_s: PositiveFloat = 20.0
    """A connection must send a request's complete headers within this many seconds of opening or of its previous
    response, else it is closed; so is a keep-alive connection idle this long."""
    upload_idle_timeout_s: PositiveFloat = 30.0
    """An upload that sends no bytes for this many seconds is cut off with 408."""
    max_uploads_per_caller: Positive = 64
    """Uploads one caller (API key, or client address when keys are off) may have in progress at once on one
    gateway; the next gets 429 with Retry-After."""
    openai_wait_s: PositiveFloat = 600.0
    """How long a request to the OpenAI-compatible routes (`/v1/audio/...`) waits for its job after the upload; past
    it the answer is an error naming the job, whose result `GET /jobs/{id}` gives later (600 s: the OpenAI SDK's
    own default timeout)."""
    openai_cancel_on_disconnect: bool = True
    """Cancel the job of an OpenAI-compatible request whose client disconnects before the answer; off keeps such
    jobs running (their result stays at `GET /jobs/{id}`)."""

    # Storage and models
    data_dir: Path = Path("data")
    """Where the embedded NATS server keeps JetStream data and where models live by default."""
    whisper_model: str = "base"
    """The model a worker serves, or several, comma-separated (`base,tiny.en`), each with `worker_slots` slots of
    its own: resolved in `models_dir`, imported from an installed PyPI package, or pulled."""
    whisper_model_path: Path | None = None
    """A GGML model file to use as is, named after the file (`ggml-NAME.bin` serves `NAME`); overrides
    `whisper_model`."""
    default_model: str | None = None
    """The model of a job that names none; default the first of `whisper_model`. Give it one value everywhere
    (gateways and workers) when workers serve different models."""
    declared_models: tuple[str, ...] = ()
    """Models that take jobs while no live worker serves them (workers scaled to zero, e.g. by KEDA): the jobs wait
    for a worker. A job for any other model that no live worker serves is refused."""
    models_dir: Path | None = None
    """Where models are kept; default `<data_dir>/models`."""
    model_base_url: str = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main"
    """Where `jetscribe models pull NAME` downloads `ggml-NAME.bin` from."""

    # NATS
    nats_url: str | None = None
    """Servers, comma-separated; absent starts an embedded nats-server under `data_dir`."""
    nats_user: str | None = None
    """NATS user name (with `nats_password`)."""
    nats_password: str | None = None
    """NATS password."""
    nats_token: str | None = None
    """NATS authentication token."""
    nats_creds: Path | None = None
    """NATS credentials file (JWT + NKey)."""
    nats_tls_ca: Path | None = None
    """CA certificate to verify the NATS server with (enables TLS)."""
    nats_tls_cert: Path | None = None
    """Client certificate for NATS mutual TLS."""
    nats_tls_key: Path | None = None
    """Private key of `nats_tls_cert`."""
    replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    """Replicas of every stream and bucket: 1 on a single server, 3 in a cluster."""
    max_queued_jobs: Positive = 100_000
    """Back-pressure: submissions beyond this many waiting jobs are refused (HTTP 429)."""
    idempotency_window_s: PositiveFloat = DAY_S
    """How long an `Idempotency-Key` of `POST /jobs` is remembered; a key used again after that makes a new job."""
    dedupe_window_s: PositiveFloat = 600.0
    """How long JetStream remembers a `Nats-Msg-Id`: a job published again within it is not queued twice."""
    events_max_age_s: PositiveFloat = 7 * DAY_S
    """How long terminal events stay in the events stream for other systems to consume."""
    job_ttl_s: PositiveFloat = 7 * DAY_S
    """How long job state, transcripts and uploaded audio are kept."""
    keep_audio: bool = False
    """Keep a job's audio object after the job ends (until `job_ttl_s`); by default the worker deletes it."""
    worker_heartbeat_ttl_s: PositiveFloat = 15.0
    """A worker whose heartbeat is older than this is gone."""

    # Worker
    worker_slots: Positive = 1
    """Jobs one worker runs at once, each with its own copy of the model."""
    engine: EngineKind = "whispercpp"
    """The Whisper engine of every model a worker serves: `whispercpp` (GGML weights, whisper.cpp) or `ctranslate2`
    (CTranslate2 weights, faster-whisper; faster on CPUs, and batched). README, "Choosing an engine"."""
    model_engines: tuple[str, ...] = ()
    """Per-model exceptions to `engine`, as NAME=ENGINE pairs, comma-separated
    (`base=ctranslate2,tiny.en=whispercpp`)."""
    compute_type: ComputeType = "auto"
    """What CTranslate2 computes in: `int8` (the `auto` choice on CPUs), `int8_float16`, `float16` (`auto` on GPUs),
    `float32`, …; whisper.cpp models are quantized in their file instead (`jetscribe models quantize`)."""
    batch_size: Positive = 1
    """30 s chunks CTranslate2 decodes in one batched forward pass, of one job or of the worker's slots' jobs together
    (give it `worker_slots` > 1 to batch across jobs); 1 decodes each job's chunks in turn with the temperature
    fallback. A batch decodes at the job's `temperature` only: no fallback."""
    threads: Positive = msgspec.field(default_factory=available_cpus)
    """Threads the engine uses per job; default the CPUs this process may use (affinity and cgroup quota)."""
    use_gpu: bool = True
    """Run Whisper on the GPU when the build supports it."""
    flash_attn: bool = True
    """Flash attention: whisper.cpp on the CPU and the GPU, CTranslate2 on the GPU."""
    vad: bool = True
    """Voice activity detection (Silero) before Whisper: only speech is transcribed, silence and noise give no text;
    each job may switch it on or off for itself."""
    ack_wait_s: PositiveFloat = 60.0
    """A job message not acknowledged or kept alive for this long goes to another worker."""
    in_progress_interval_s: PositiveFloat = 15.0
    """How often a worker tells JetStream a running job is alive; keep it well below `ack_wait_s`."""
    max_deliver: Positive = 3
    """Deliveries of a job message before it is dead-lettered and the job failed."""
    shutdown_grace_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    """On SIGTERM a worker lets running jobs finish this long, then hands them back to the queue."""
    fetch_timeout_s: PositiveFloat = 300.0
    """Time limit for fetching a job's audio from the object store or its URL."""
    max_audio_url_bytes: Positive = 2 * GiB
    """Largest audio a worker downloads from an `audio_url`."""
    retry_delay_s: PositiveFloat = 5.0
    """Back-off before a job that hit a transient fault is delivered again; doubles with each attempt."""
    prefetch_lead_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    """A worker takes its next job when the current transcription should end within this many seconds, so the
    next audio is fetched and decoded meanwhile; 0 waits until the current transcription should be over."""
    work_dir: Path | None = None
    """Where the worker keeps temporary audio files; default the system temp directory."""
    max_audio_s: PositiveFloat = 4 * HOUR_S
    """Longest audio a job may have; longer audio fails the job at once. Decoded audio takes 64 KB a second
    (230 MB an hour), and each worker slot holds at most this much of it (see docs/deploy.md, sizing)."""
    job_timeout_s: PositiveFloat = 600.0
    """Wall-clock limit of a job beyond the time its audio's length allows: fetching, decoding, loading."""
    job_timeout_per_audio_s: PositiveFloat = 3.0
    """Seconds a job may run per second of audio, on top of `job_timeout_s`; past the sum it is stopped and failed."""

    # Webhooks
    webhook_secret: str | None = None
    """Secret that signs webhooks (Standard Webhooks; `whsec_…` or plain); absent means unsigned."""
    webhook_retry_schedule_s: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    """Back-off before each webhook retry, comma-separated."""
    webhook_timeout_s: PositiveFloat = 10.0
    """Time limit of one webhook attempt."""
    webhook_concurrency: Positive = 64
    """Webhook attempts one gateway makes at once, to all receivers together."""
    webhook_host_concurrency: Positive = 4
    """Webhook attempts one gateway makes at once to any one host; a slow or silent receiver holds no more."""
    allow_private_targets: bool = False
    """Allow webhook and audio URLs that resolve to loopback or private addresses (development only)."""

    def __post_init__(self) -> None:
        _check_models(self)
        _check_engines(self)

    @property
    def served_models(self) -> tuple[str, ...]:
        """The names of the models a worker started with these settings serves, in the order given."""
        path = self.whisper_model_path
        if path is not None:
            # A GGML file (`ggml-NAME.bin`), or a CTranslate2 model directory named after the model.
            return (path.name if path.suffix != ".bin" else path.name.removeprefix("ggml-").removesuffix(".bin"),)
        return tuple(name.strip() for name in self.whisper_model.split(",") if name.strip())

    def engine_of(self, model: str) -> EngineKind:
        """The engine a worker runs `model` with: its entry in `model_engines`, else `engine`."""
        return _model_engines(self.model_engines).get(model, self.engine)

    @property
    def job_default_model(self) -> str:
        """The model a job runs with when it names none: `default_model`, else the first served model."""
        return self.default_model or self.served_models[0]

    @property
    def model_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def nats_store_dir(self) -> Path:
        return self.data_dir / "nats"

    @property
    def nats_credentials_file(self) -> Path:
        """Where `jetscribe serve` keeps the credentials of its embedded nats-server (jetscribe.nats_credentials)."""
        return self.data_dir / "nats-credentials.env"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from `environ` (default: the process environment), then `overrides`.

        Each variable is converted by its field's type here, not by msgspec, so that a malformed
        value raises ConfigError in words this project owns: the variable, the value as written,
        and what is expected (e.g. `PORT='eighty' is invalid: expected a whole number`).
        `overrides` are typed values (for tests and embedding) and are checked by msgspec.
        """
        environ = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        for field in msgspec.structs.fields(cls):
            variable = env_name(field.name)
            value = environ.get(variable)
            if value is None or value == "":
                continue
            try:
                raw[field.name] = convert(value, field.type)
            except InvalidValueError as exc:
                raise ConfigError(f"{variable}={value!r} is invalid: {exc}") from exc
        raw.update(overrides)
        try:
            return msgspec.convert(raw, cls)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"invalid settings override: {exc}") from exc


def _model_engines(pairs: tuple[str, ...]) -> dict[str, EngineKind]:
    """`model_engines` as {model: engine}; ConfigError for a pair that is not NAME=ENGINE with a known engine."""
    found: dict[str, EngineKind] = {}
    for pair in pairs:
        model, _, engine = (part.strip() for part in pair.partition("="))
        if not model or engine not in ENGINES:
            raise ConfigError(
                f"JETSCRIBE_MODEL_ENGINES: {pair!r} is not NAME=ENGINE with ENGINE one of {', '.join(ENGINES)} "
                "(e.g. JETSCRIBE_MODEL_ENGINES=base=ctranslate2,tiny.en=whispercpp)"
            )
        found[model] = engine
    return found


def _check_engines(settings: Settings) -> None:
    """Raise ConfigError for engine settings that cannot take effect."""
    _model_engines(settings.model_engines)
    served = settings.served_models
    if settings.batch_size > 1 and not any(settings.engine_of(model) == "ctranslate2" for model in served):
        raise ConfigError(
            f"JETSCRIBE_BATCH_SIZE={settings.batch_size} batches the CTranslate2 engine only, and no model here runs "
            "on it: set JETSCRIBE_ENGINE=ctranslate2 (or name models in JETSCRIBE_MODEL_ENGINES), or leave the batch "
            "size at 1"
        )


def _check_models(settings: Settings) -> None:
    """Raise ConfigError unless every model name the settings give can be routed (`schemas.names.model_token`)."""
    path = settings.whisper_model_path
    listed = [name.strip() for name in settings.whisper_model.split(",") if name.strip()]
    if path is None and not listed:
        raise ConfigError("WHISPER_MODEL names no model: give one or more model names, comma-separated")
    if path is not None and len(listed) > 1:
        raise ConfigError(
            f"WHISPER_MODEL_PATH loads one model file, but WHISPER_MODEL={settings.whisper_model!r} names "
            f"{len(listed)}: keep the files in JETSCRIBE_MODELS_DIR as ggml-NAME.bin and leave WHISPER_MODEL_PATH unset"
        )
    variable = "WHISPER_MODEL_PATH" if path is not None else "WHISPER_MODEL"
    served = settings.served_models
    if len(set(served)) != len(served):
        raise ConfigError(f"{variable}={settings.whisper_model!r} names a model more than once")
    checked = [(variable, name) for name in served]
    checked += [("JETSCRIBE_DECLARED_MODELS", name) for name in settings.declared_models]
    if settings.default_model is not None:
        checked.append(("JETSCRIBE_DEFAULT_MODEL", settings.default_model))
    for source, name in checked:
        try:
            names.model_token(name)
        except ValueError as exc:
            hint = (
                " (the model's name is the file's, without `ggml-` and `.bin`)"
                if source == "WHISPER_MODEL_PATH"
                else ""
            )
            raise ConfigError(f"{source}: {exc}{hint}") from exc


def env_name(field: str) -> str:
    """The environment variable that sets `field`."""
    return _KEPT_NAMES.get(field) or ENV_PREFIX + field.upper()
