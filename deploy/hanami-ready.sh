#!/bin/bash
# Healthcheck of the hanami service (compose mounts this file into the container): healthy only once
# Hanami lists a host. It answers HTTP about a second before its hardware is initialised, and a
# cluster created in that window fails, so "it answers" is not enough. Logs in as the admin from
# HANAMI_ADMIN_* and asks GET /control/v1/host/all. Bash only (no curl or wget in the image).
#   HANAMI_HTTP_IP (default 127.0.0.1; 0.0.0.0 means 127.0.0.1), HANAMI_HTTP_PORT (default 11418)
set -uo pipefail
host=${HANAMI_HTTP_IP:-127.0.0.1}
[ "$host" = 0.0.0.0 ] && host=127.0.0.1
port=${HANAMI_HTTP_PORT:-11418}
export LC_ALL=C  # ${#body} counts bytes
response=""

# request METHOD PATH BODY [TOKEN] -> the whole response in $response
request() {
  local headers="" response_part=""
  [ -n "${4:-}" ] && headers="X-Auth-Token: $4"$'\r\n'
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf '%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %s\r\n%s\r\n%s' \
    "$1" "$2" "$host" "$port" "${#3}" "$headers" "$3" >&3
  response=""
  while IFS= read -r -t 4 -u 3 response_part || [ -n "$response_part" ]; do
    response+="$response_part"$'\n'
    response_part=""
  done
  exec 3>&-
  [[ $response == "HTTP/1."?" 200"* ]]
}

json_string() {  # escape backslashes and quotes for a JSON string
  local value=${1//\\/\\\\}
  printf '%s' "${value//\"/\\\"}"
}

body="{\"id\":\"$(json_string "${HANAMI_ADMIN_USER_ID:-}")\",\"password\":\"$(json_string "${HANAMI_ADMIN_PASSWORD:-}")\"}"
request POST /control/v1/token "$body" || { echo "no token: ${response%%$'\r'*}"; exit 1; }
[[ $response =~ \"token\"[[:space:]]*:[[:space:]]*\"([^\"]+)\" ]] || { echo "no token in the answer"; exit 1; }
token=${BASH_REMATCH[1]}
request GET /control/v1/host/all "" "$token" || { echo "host/all: ${response%%$'\r'*}"; exit 1; }
[[ $response =~ \"body\"[[:space:]]*:[[:space:]]*\[[[:space:]]*\[ ]] || { echo "no host listed yet"; exit 1; }
echo "ready: a host is listed"
