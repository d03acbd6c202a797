# Hanami Web Console: a slim, non-root image. Build the demo variant with --build-arg EXTRAS=demo.
# Plain Dockerfile instructions only (no heredocs), so Docker (with or without BuildKit) and
# podman/buildah build it alike. The build stage makes a virtual environment; the image gets only that.
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/console
WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
ARG EXTRAS=""
COPY pyproject.toml deploy/requirements.py ./
RUN python requirements.py "$EXTRAS" > requirements.txt \
 && /opt/console/bin/pip install -r requirements.txt

COPY README.md setup.py ./
COPY webconsole ./webconsole
COPY templates ./templates
COPY static ./static
# The package itself, then the installers go: the image runs the console, it installs nothing.
RUN /opt/console/bin/pip install --no-deps . \
 && /opt/console/bin/pip uninstall -y -q pip setuptools

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/console/bin:$PATH

RUN groupadd --gid 10001 console \
 && useradd --uid 10001 --gid console --home-dir /home/console --create-home console
COPY --from=build /opt/console /opt/console

USER 10001:10001
WORKDIR /home/console
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2); sys.exit(0)"]

# No secret is baked in: HANAMI_CONSOLE_SECRET_KEY and the backend URL come from the environment.
CMD ["hanami-console", "serve", "--host", "0.0.0.0", "--port", "8000"]
