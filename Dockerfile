# Hanami Web Console: a slim, non-root image. Build the demo variant with --build-arg EXTRAS=demo.
FROM python:3.11-slim-bookworm

ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 console \
 && useradd --system --uid 10001 --gid console --home-dir /home/console --create-home console

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python - <<'PY' > /tmp/requirements.txt && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt
import os, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
requirements = list(project["dependencies"])
for extra in filter(None, os.environ.get("EXTRAS", "").split(",")):
    requirements += [r for r in project["optional-dependencies"][extra] if not r.startswith("hanami-console")]
print("\n".join(requirements))
PY

COPY README.md setup.py ./
COPY webconsole ./webconsole
COPY templates ./templates
COPY static ./static
RUN pip install --no-deps . && rm -rf /app/build

USER 10001:10001
WORKDIR /home/console
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2); sys.exit(0)"]

# No secret is baked in: HANAMI_CONSOLE_SECRET_KEY and the backend URL come from the environment.
CMD ["hanami-console", "serve", "--host", "0.0.0.0", "--port", "8000"]
