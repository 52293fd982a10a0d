# syntax=docker/dockerfile:1
# A jetscribe worker on NVIDIA GPUs: pywhispercpp compiled from its sdist with whisper.cpp's CUDA backend, and
# CTranslate2 (faster-whisper) from its CUDA-enabled wheel: either engine runs on the GPU (JETSCRIBE_ENGINE).
#   docker build -f deploy/worker-cuda.Dockerfile -t jetscribe/worker-cuda .
#   docker build -f deploy/worker-cuda.Dockerfile --build-arg CUDA_ARCHITECTURES=89 ...   # one arch: faster build
# CUDA_VERSION, CUDNN_TAG and UBUNTU_VERSION pick the nvidia/cuda images
# (`<CUDA_VERSION>-<CUDNN_TAG>-{devel,runtime}-ubuntu<UBUNTU_VERSION>`); the runtime stage uses the same three,
# so the CUDA libraries the build linked against are the ones that run. Ubuntu 24.04 brings Python 3.12.
# The host needs an NVIDIA driver that supports CUDA_VERSION and the NVIDIA Container Toolkit.

ARG CUDA_VERSION=12.6.3
ARG CUDNN_TAG=cudnn
ARG UBUNTU_VERSION=24.04

FROM nvidia/cuda:${CUDA_VERSION}-${CUDNN_TAG}-devel-ubuntu${UBUNTU_VERSION} AS build
# Turing (sm_75, the RTX 2080 the service began on), Ampere (80, 86), Ada (89), Hopper (90).
ARG CUDA_ARCHITECTURES="75;80;86;89;90"
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Toolchain versions come with the pinned Ubuntu release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-dev python3-venv build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, exactly as the lock file pins them (every hash checked), so a code change does not
# reinstall them. pywhispercpp is the locked release, compiled from its (hash-checked) sdist with CUDA:
# its setup.py hands every environment variable to CMake as -D<NAME>=<VALUE>: GGML_CUDA=1 selects
# the CUDA backend, CMAKE_CUDA_ARCHITECTURES the GPU generations, and the RPATH settings let the extension find
# libwhisper/libggml beside it in site-packages (a source build is not repaired like PyPI's wheels);
# '$ORIGIN' is for the dynamic loader, not the shell.
COPY requirements/build.txt requirements/worker.txt ./requirements/
# hadolint ignore=SC2016
RUN pip install --require-hashes -r requirements/build.txt \
    && GGML_CUDA=1 \
    CMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES}" \
    CMAKE_BUILD_WITH_INSTALL_RPATH=ON \
    CMAKE_INSTALL_RPATH='$ORIGIN' \
    pip install --no-binary=pywhispercpp --require-hashes -r requirements/worker.txt
# Fail the build, not the first job, if an engine cannot load: the driver's libcuda is absent at build
# time, so the toolkit's stub stands in for it. The CTranslate2 engine (JETSCRIBE_ENGINE=ctranslate2) needs no
# build: ctranslate2's PyPI wheel carries its CUDA kernels and uses the runtime image's cuBLAS 12 and cuDNN 9.
RUN mkdir -p /tmp/cuda-stub \
    && ln -s /usr/local/cuda/lib64/stubs/libcuda.so /tmp/cuda-stub/libcuda.so.1 \
    && LD_LIBRARY_PATH=/tmp/cuda-stub python -c "import _pywhispercpp, ctranslate2, faster_whisper" \
    && rm -rf /tmp/cuda-stub
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY jetscribe ./jetscribe
COPY worker ./worker
COPY client ./client
COPY cli ./cli
RUN pip install --no-deps --no-build-isolation .

FROM nvidia/cuda:${CUDA_VERSION}-${CUDNN_TAG}-runtime-ubuntu${UBUNTU_VERSION}
ENV DEBIAN_FRONTEND=noninteractive
# The venv's python is a link to /usr/bin/python3 of the same Ubuntu release as the build stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ffmpeg ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 jetscribe \
    && useradd --system --uid 10001 --gid jetscribe --home-dir /data --no-create-home jetscribe \
    && mkdir -p /data/models \
    && chown -R jetscribe:jetscribe /data
COPY --from=build /opt/venv /opt/venv
COPY deploy/worker_healthcheck.py /opt/jetscribe/worker_healthcheck.py
# utility: pynvml (GPU name, memory, utilisation in the heartbeat) needs the driver's libnvidia-ml.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data \
    JETSCRIBE_USE_GPU=true \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
WORKDIR /data
# start-period covers loading the model and the GPU warm-up inference before the first heartbeat.
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 \
    CMD ["python", "/opt/jetscribe/worker_healthcheck.py"]
ENTRYPOINT ["jetscribe"]
CMD ["worker"]
