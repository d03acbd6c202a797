# Stand-in for python:3.11-slim-bookworm, made from Debian's python3 (no image registry is reachable in
# CI; its base, debian:bookworm-slim, is a debootstrap made by .ci/containers): python and pip on PATH,
# pip allowed to install into the system, and this machine's CA bundle and pip.conf (copied into the
# build context by .ci/containers) so that pip inside builds reaches the package index.
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 python3-pip python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* /usr/lib/python3.11/EXTERNALLY-MANAGED \
 && ln -sf python3 /usr/bin/python \
 && ln -sf pip3 /usr/bin/pip
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY pip.conf /etc/pip.conf
CMD ["python3"]
