# One image for every Canvass process: the migration step, the three API services and the requests worker.
# docker-compose.yml chooses what each container runs.
FROM python:3.11-slim-bookworm

# The uv release the lock file was written with.
ARG UV_VERSION=0.13.8

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

RUN pip install "uv==${UV_VERSION}"

# ffmpeg: community_api removes the container metadata of tips' video and audio (remuxed, never re-encoded).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so that code changes do not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY shared ./shared
COPY services ./services
COPY migrations ./migrations
COPY alembic.ini ./alembic.ini
COPY openapi ./openapi

# UVICORN_HTTP: the server protocol with Canvass's limits on request lines and headers (shared/server.py).
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONPATH=/app \
    CANVASS_EVIDENCE_DIR=/var/lib/canvass/evidence \
    UVICORN_HTTP=shared.server:HttpProtocol

# Run as an unprivileged user. The evidence folder is created here, owned by that user, so a fresh named
# volume mounted on it inherits the ownership.
RUN groupadd --system --gid 10001 canvass \
    && useradd --system --uid 10001 --gid canvass --home-dir /app --no-create-home --shell /usr/sbin/nologin canvass \
    && mkdir -p /var/lib/canvass/evidence \
    && chown -R canvass:canvass /var/lib/canvass \
    && chmod 0750 /var/lib/canvass/evidence
USER canvass:canvass

EXPOSE 8001 8002 8003 8004 8005

CMD ["uvicorn", "services.registry_api.main:app", "--host", "0.0.0.0", "--port", "8001"]
