# syntax=docker/dockerfile:1
# A jetscribe worker for machines without an NVIDIA GPU (pywhispercpp's CPU wheel from PyPI):
# `docker build -f deploy/worker-cpu.Dockerfile -t jetscribe/worker-cpu .`

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, exactly as the lock file pins them (every hash checked), so a code change does not
# reinstall them. Only this role's dependencies: see the extras in pyproject.toml.
COPY requirements/build.txt requirements/worker.txt ./requirements/
RUN pip install --require-hashes -r requirements/build.txt \
    && pip install --require-hashes -r requirements/worker.txt
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY jetscribe ./jetscribe
COPY worker ./worker
COPY client ./client
COPY cli ./cli
RUN pip install --no-deps --no-build-isolation .

FROM python:${PYTHON_VERSION}-slim-bookworm
# Debian's ffmpeg brings ffprobe too, which the static imageio-ffmpeg binary lacks.
# Package versions are left to the pinned Debian release; pinning them breaks on every security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 jetscribe \
    && useradd --system --uid 10001 --gid jetscribe --home-dir /data --no-create-home jetscribe \
    && mkdir -p /data/models \
    && chown -R jetscribe:jetscribe /data
COPY --from=build /opt/venv /opt/venv
COPY deploy/worker_healthcheck.py /opt/jetscribe/worker_healthcheck.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data \
    JETSCRIBE_USE_GPU=false
USER 10001:10001
WORKDIR /data
# start-period covers loading the model and the warm-up inference before the first heartbeat.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "/opt/jetscribe/worker_healthcheck.py"]
ENTRYPOINT ["jetscribe"]
CMD ["worker"]
