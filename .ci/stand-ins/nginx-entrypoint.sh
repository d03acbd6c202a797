#!/bin/sh
# The official nginx image's template step: each /etc/nginx/templates/NAME.template becomes
# /etc/nginx/conf.d/NAME with the variables of the environment substituted (only those that are
# set, so nginx's own $variables are left alone); then the command runs.
set -eu
for template in /etc/nginx/templates/*.template; do
  [ -f "$template" ] || continue
  # shellcheck disable=SC2016,SC2046
  envsubst "$(printf '${%s} ' $(env | cut -d= -f1))" <"$template" >"/etc/nginx/conf.d/$(basename "$template" .template)"
done
exec "$@"
