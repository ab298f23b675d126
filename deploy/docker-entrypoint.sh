#!/bin/sh
# Starts Sluice in the container image. The HTTP API is published on every interface
# only when it is guarded: with a bearer token (SLUICE_API_TOKEN, or a file named by
# SLUICE_API_TOKEN_FILE such as a Docker secret), or when the command line says
# --api.allow_insecure on purpose. Otherwise the pipeline runs as usual and the API
# stays on the container's loopback, with a note saying how to publish it. No token is
# built into the image.
set -eu

if [ -n "${SLUICE_API_TOKEN_FILE:-}" ]; then
    if [ ! -r "$SLUICE_API_TOKEN_FILE" ]; then
        echo "sluice: SLUICE_API_TOKEN_FILE=$SLUICE_API_TOKEN_FILE cannot be read" >&2
        exit 2
    fi
    SLUICE_API_TOKEN=$(tr -d '\r\n' <"$SLUICE_API_TOKEN_FILE")
    export SLUICE_API_TOKEN
fi

host=""
for arg in "$@"; do
    case "$arg" in
        --api.http.host|--api.http.host=*) host="given" ;;
        --api.allow_insecure) [ -n "$host" ] || host="0.0.0.0" ;;
    esac
done
if [ -z "$host" ]; then
    if [ -n "${SLUICE_API_TOKEN:-}" ]; then
        host="0.0.0.0"
    else
        host="127.0.0.1"
        echo "sluice: the HTTP API listens on the container's loopback only; set SLUICE_API_TOKEN (or SLUICE_API_TOKEN_FILE) to publish it on port 9600" >&2
    fi
fi

if [ "$host" = "given" ]; then
    exec sluice --path.data "${SLUICE_DATA:-/var/lib/sluice/data}" "$@"
fi
exec sluice --path.data "${SLUICE_DATA:-/var/lib/sluice/data}" --api.http.host "$host" "$@"
