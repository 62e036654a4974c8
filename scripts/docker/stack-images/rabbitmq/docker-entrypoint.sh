#!/bin/bash
# The official rabbitmq image's entrypoint, reduced to what the stack relies on (see Dockerfile):
# as root, the data folder becomes the server's and the command runs as rabbitmq.
set -euo pipefail
if [ "${1:0:1}" = '-' ]; then set -- rabbitmq-server "$@"; fi
if [ "$1" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
  find /var/lib/rabbitmq /etc/rabbitmq ! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' +
  exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$BASH_SOURCE" "$@"
fi
exec "$@"
