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
# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY README.md ./
COPY schemas ./schemas
COPY jetscribe ./jetscribe
COPY gateway ./gateway
COPY worker ./worker
RUN pip install --no-deps .

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
