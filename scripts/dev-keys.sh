#!/usr/bin/env bash
# Creates the development signing keys conf/dev.conf names (var/dev-keys/*.key|crt under
# the given root, default the checkout), once. Self-signed, for the loopback simulators only:
# never for an authority.
set -eu
root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
dir="$root/var/dev-keys"
mkdir -p "$dir"
chmod 0700 "$dir"
for name in zz-test; do
  [ -s "$dir/$name.key" ] && [ -s "$dir/$name.crt" ] && continue
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -subj "/CN=ewtp DEV key $name - not for production" \
    -keyout "$dir/$name.key" -out "$dir/$name.crt" 2>/dev/null
  chmod 0600 "$dir/$name.key"
done
