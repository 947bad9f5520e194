# Switchyard's control plane + ext_proc processor (Envoy and vLLM run in their own containers:
# see docker-compose.yml). Runtime dependencies only; no vLLM, no test tools.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SWITCHYARD_ENVOY_TEMPLATE=/app/envoy/bootstrap.yaml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY control_plane ./control_plane
COPY router_model ./router_model
COPY envoy ./envoy

RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin switchyard \
    && mkdir -p /run/switchyard \
    && chown switchyard /run/switchyard

USER 10001
EXPOSE 10000
ENTRYPOINT ["switchyard"]
CMD ["up", "--policies", "/policies"]
