# syntax=docker/dockerfile:1
# The jetscribe HTTP gateway: `docker build -f deploy/gateway.Dockerfile -t jetscribe/gateway .`
# Also carries the `jetscribe` CLI, so docker-compose uses it for the one-shot `models pull`.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, exactly as the lock file pins them (every hash checked), so a code change does not
# reinstall them. Only this role's dependencies: see the extras in pyproject.toml.
COPY requirements/build.txt requirements/gateway.txt ./requirements/
RUN pip install --require-hashes -r requirements/build.txt \
    && pip install --require-hashes -r requirements/gateway.txt
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY jetscribe ./jetscribe
COPY gateway ./gateway
COPY client ./client
COPY cli ./cli
RUN pip install --no-deps --no-build-isolation .

FROM python:${PYTHON_VERSION}-slim-bookworm
# A fixed numeric id, so Kubernetes' runAsNonRoot can verify it and volumes can be chowned to it.
RUN groupadd --system --gid 10001 jetscribe \
    && useradd --system --uid 10001 --gid jetscribe --home-dir /data --no-create-home jetscribe \
    && mkdir -p /data/models \
    && chown -R jetscribe:jetscribe /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data \
    PORT=8080
USER 10001:10001
WORKDIR /data
EXPOSE 8080
# No curl in a slim image: the standard library makes the request.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('PORT', '8080'), timeout=4)"]
ENTRYPOINT ["jetscribe"]
CMD ["gateway"]
