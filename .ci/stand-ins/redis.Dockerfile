# Stand-in for redis:7-alpine, made from Debian's redis-server (no image registry is reachable in CI;
# its base, debian:bookworm-slim, is a debootstrap made by .ci/containers). compose.yaml gives the command.
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/*
USER redis
WORKDIR /var/lib/redis
CMD ["redis-server"]
