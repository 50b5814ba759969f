# syntax=docker/dockerfile:1
# Build stage: wheels for every pinned dependency (compilers live only here).
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt

# Runtime stage: slim base, the virtualenv, the code, a non-root user; no build tools.
FROM python:3.11.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=mcp_project.settings \
    MCP_VAR_DIR=/app/var \
    GUNICORN_BIND=0.0.0.0:8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    LOG_FORMAT=json
RUN groupadd --system --gid 10001 mcp \
    && useradd --system --uid 10001 --gid mcp --home-dir /app --shell /usr/sbin/nologin mcp
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Code stays root-owned (read-only for the app user); only var/ and the metrics directory are writable.
COPY . .
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-secret-0123456789 python manage.py collectstatic --noinput \
    && mkdir -p /app/var /tmp/prometheus \
    && chown -R mcp:mcp /app/var /tmp/prometheus
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "mcp_project.wsgi"]
