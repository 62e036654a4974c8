#!/bin/sh
# The proxy's entrypoint: writes nginx's configuration from the four secrets, then runs nginx.
# ssl_certificate empty -> plain HTTP on 80; otherwise HTTPS on 443 and 80 redirects to it.
# basic_auth_username empty -> no authentication. Web UIs: /rabbitmq/ (RabbitMQ management).
#   AIRTASKS_PROXY_CONF  where to write the configuration (default /etc/nginx/conf.d/default.conf)
#   AIRTASKS_PROXY_DRY_RUN=1  write it and stop (for tests)
set -eu
secrets=${AIRTASKS_SECRETS_DIR:-/run/secrets}
conf=${AIRTASKS_PROXY_CONF:-/etc/nginx/conf.d/default.conf}
# A blank secret (Docker refuses empty ones, so "off" is stored as a newline) counts as empty.
read_secret() { [ -s "$secrets/$1" ] && tr -d '\r\n' <"$secrets/$1" || true; }
blank() { [ -z "$(tr -d ' \t\r\n' <"$secrets/$1" 2>/dev/null)" ]; }

user=$(read_secret basic_auth_username)
auth=""
if [ -n "$user" ]; then
  htpasswd=$(dirname "$conf")/airtasks.htpasswd
  pass=$(read_secret basic_auth_password)
  # nginx reads crypt(3) hashes; busybox's cryptpw makes them where it exists.
  if command -v cryptpw >/dev/null 2>&1; then
    printf '%s:%s\n' "$user" "$(cryptpw -m sha512 "$pass")" >"$htpasswd"
  else
    printf '%s:{PLAIN}%s\n' "$user" "$pass" >"$htpasswd"
  fi
  chmod 600 "$htpasswd"
  auth="auth_basic \"airtasks\"; auth_basic_user_file $htpasswd;"
fi

locations="
    location /rabbitmq/ { $auth proxy_pass http://rabbitmq:15672/; }
    location = /healthz { return 200 'ok'; }"

if ! blank ssl_certificate && ! blank ssl_certificate_key; then
  cat >"$conf" <<CONF
server { listen 80; return 301 https://\$host\$request_uri; }
server {
    listen 443 ssl;
    ssl_certificate $secrets/ssl_certificate;
    ssl_certificate_key $secrets/ssl_certificate_key;
    resolver 127.0.0.11 valid=10s;
$locations
}
CONF
else
  cat >"$conf" <<CONF
server {
    listen 80;
    resolver 127.0.0.11 valid=10s;
$locations
}
CONF
fi
[ "${AIRTASKS_PROXY_DRY_RUN:-0}" = 1 ] && exit 0
exec nginx -g 'daemon off;'
