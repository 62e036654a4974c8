#!/bin/sh
# The proxy's entrypoint: writes nginx's configuration from the four secrets, then runs nginx.
# ssl_certificate empty -> plain HTTP on 80; otherwise HTTPS on 443 and 80 redirects to it.
# basic_auth_username empty -> no authentication; otherwise the proxy's own routes (/) ask for it.
# Routes:
#   /           the dashboard and its API (the `web` service, airtasks web), behind the proxy's basic auth
#   /rabbitmq/  RabbitMQ's management UI and API, behind RabbitMQ's own login (the broker's user and
#               rabbitmq_password), not the proxy's: both read the same Authorization header, so only
#               identical credentials could pass both. The path goes to RabbitMQ as the client sent
#               it (%2F, the default vhost, stays encoded).
#   /healthz    200 ok, no authentication
#   AIRTASKS_PROXY_CONF  where to write the configuration (default /etc/nginx/conf.d/default.conf)
#   AIRTASKS_NGINX_CONF  nginx's main configuration, read for its worker user (default /etc/nginx/nginx.conf)
#   AIRTASKS_PROXY_DRY_RUN=1  write it and stop (for tests)
set -eu
secrets=${AIRTASKS_SECRETS_DIR:-/run/secrets}
conf=${AIRTASKS_PROXY_CONF:-/etc/nginx/conf.d/default.conf}
main_conf=${AIRTASKS_NGINX_CONF:-/etc/nginx/nginx.conf}
# A blank secret (Docker refuses empty ones, so "off" is stored as a newline) counts as empty.
read_secret() { [ -s "$secrets/$1" ] && tr -d '\r\n' <"$secrets/$1" || true; }
blank() { [ -z "$(tr -d ' \t\r\n' <"$secrets/$1" 2>/dev/null)" ]; }

user=$(read_secret basic_auth_username)
auth=""
if [ -n "$user" ]; then
  htpasswd=$(dirname "$conf")/airtasks.htpasswd
  pass=$(read_secret basic_auth_password)
  # nginx reads crypt(3) hashes: busybox's cryptpw (Alpine) or openssl make them where they exist.
  if command -v cryptpw >/dev/null 2>&1; then
    hash=$(cryptpw -m sha512 "$pass")
  elif command -v openssl >/dev/null 2>&1; then
    hash=$(printf '%s\n' "$pass" | openssl passwd -6 -stdin)
  else
    hash="{PLAIN}$pass"
  fi
  (umask 077 && printf '%s:%s\n' "$user" "$hash" >"$htpasswd")
  # nginx's workers read the file, and they are not root (nginx on Alpine, www-data on Debian): the
  # file is root's and their group's, readable by no one else.
  worker=$(sed -n 's/^[[:space:]]*user[[:space:]]\{1,\}\([^[:space:];]*\).*/\1/p' "$main_conf" 2>/dev/null | head -n 1)
  group=$(id -gn "${worker:-nobody}" 2>/dev/null || true)
  if [ -n "$group" ] && chgrp "$group" "$htpasswd" 2>/dev/null; then
    chmod 640 "$htpasswd"
  else
    chmod 644 "$htpasswd"
  fi
  auth="auth_basic \"airtasks\"; auth_basic_user_file $htpasswd;"
fi

# The raw request path after /rabbitmq (nginx would decode %2F in $uri, and in proxy_pass's URI).
cat >"$conf" <<'CONF'
map $request_uri $airtasks_rabbitmq_uri {
    default /;
    "~^/rabbitmq(?<rest>/.*)$" $rest;
}
CONF

locations="
    resolver 127.0.0.11 valid=10s;
    location = /healthz { default_type text/plain; return 200 'ok'; }
    location / {
        $auth
        # A variable in proxy_pass: web is looked up when asked for (the proxy starts before it), and
        # the request's path goes on as the client sent it.
        set \$airtasks_web http://web:8080;
        proxy_pass \$airtasks_web;
        # With its port: web compares a POST's Origin with it (cross-site requests are refused).
        proxy_set_header Host \$http_host;
        proxy_set_header X-Forwarded-Proto \$scheme;
        # Live pages hold a server-sent-event stream open; web also says X-Accel-Buffering: no.
        proxy_buffering off;
        proxy_read_timeout 1h;
    }
    location = /rabbitmq { return 301 /rabbitmq/; }
    location /rabbitmq/ {
        # A variable in proxy_pass: the path is sent as it is, and rabbitmq is looked up when asked
        # for (so the proxy starts before it).
        proxy_pass http://rabbitmq:15672\$airtasks_rabbitmq_uri;
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-Proto \$scheme;
    }"

if ! blank ssl_certificate && ! blank ssl_certificate_key; then
  cat >>"$conf" <<CONF
server { listen 80; return 301 https://\$host\$request_uri; }
server {
    listen 443 ssl;
    ssl_certificate $secrets/ssl_certificate;
    ssl_certificate_key $secrets/ssl_certificate_key;
$locations
}
CONF
else
  cat >>"$conf" <<CONF
server {
    listen 80;
$locations
}
CONF
fi
[ "${AIRTASKS_PROXY_DRY_RUN:-0}" = 1 ] && exit 0
exec nginx -g 'daemon off;'
