# Stand-in for nginx:1.27-alpine, made from Debian's nginx (no image registry is reachable in CI; its
# base, debian:bookworm-slim, is a debootstrap made by .ci/containers), with the official image's
# conventions that compose.yaml relies on: /etc/nginx/templates/*.template filled from the environment
# into conf.d/ at start, logs on stdout/stderr, wget for the healthcheck.
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends nginx-light gettext-base wget \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
COPY nginx-entrypoint.sh /docker-entrypoint.sh
ENTRYPOINT ["/docker-entrypoint.sh"]
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
