#!/usr/bin/env bash
# Creates the development signing keys conf/dev.conf names (var/dev-keys/*.key|crt under
# the given root, default the checkout), once. Self-signed, for the loopback simulators only:
# never for an authority.
set -eu
root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
dir="$root/var/dev-keys"
mkdir -p "$dir"
chmod 0700 "$dir"
for name in zz-test evidence; do
  [ -s "$dir/$name.key" ] && [ -s "$dir/$name.crt" ] && continue
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -subj "/CN=ewtp DEV key $name - not for production" \
    -keyout "$dir/$name.key" -out "$dir/$name.crt" 2>/dev/null
  chmod 0600 "$dir/$name.key"
done
# China (cn-sign): an SM2 key with a self-signed SM2-with-SM3 certificate, as China E-port
# certificates are (OpenSSL 3.0 on Debian 12: genpkey -algorithm SM2, req -sm3).
for name in cn-sign; do
  [ -s "$dir/$name.key" ] && [ -s "$dir/$name.crt" ] && continue
  openssl genpkey -algorithm SM2 -out "$dir/$name.key" 2>/dev/null
  openssl req -x509 -key "$dir/$name.key" -sm3 -days 3650 \
    -subj "/CN=ewtp DEV key $name - not for production" -out "$dir/$name.crt" 2>/dev/null
  chmod 0600 "$dir/$name.key"
done
# Malaysia (my-sign): RSA with the organisational subject MyInvois expects (the issuer's TIN
# in organizationIdentifier, its BRN in serialNumber): the dev taxpayer of conf/dev.conf.
for name in my-sign; do
  [ -s "$dir/$name.key" ] && [ -s "$dir/$name.crt" ] && continue
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -set_serial 4660 \
    -subj "/C=MY/O=ewtp DEV taxpayer/organizationIdentifier=C25845632020/serialNumber=201901234567/CN=ewtp DEV key $name - not for production" \
    -keyout "$dir/$name.key" -out "$dir/$name.crt" 2>/dev/null
  chmod 0600 "$dir/$name.key"
done
# The China instance's spool folders (the customs client's send and receive folders; in
# development the simulator reads out/ and answers into in/). ewtpd -t checks that they exist.
mkdir -p "$root/var/spool/cn/out" "$root/var/spool/cn/in"
# Rwanda's customs instance: the declarant's ASYCUDA client folders (the rw simulator in dev).
mkdir -p "$root/var/spool/rw/out" "$root/var/spool/rw/in"
