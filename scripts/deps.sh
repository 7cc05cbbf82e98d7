#!/usr/bin/env bash
# Installs the Debian 12 packages ewtp needs, only those missing.
# Usage: scripts/deps.sh [build|run|test|docs|package|fuzz]
#   build  compilers and libraries (make build)
#   run    build + what the simulators of `make run` use: Java, Saxon-HE and xmllint for the
#          Belgian access point stub (reference/be/peppol/validate.sh), curl for the README
#   test   run + the tools only the test suite uses (make test, make deps)
#   docs   doxygen, for the SDK reference of `make docs` (nothing else needs it)
#   package build + dpkg-dev, debhelper and lintian (make package)
#   fuzz   build + clang 14 and its libFuzzer runtime, python3 for the seeds (make fuzz)
set -eu
profile=${1:-build}
case $profile in
  build | run | test | docs | package | fuzz) ;;
  *) echo "usage: scripts/deps.sh [build|run|test|docs|package|fuzz]" >&2; exit 2 ;;
esac
want=(gcc make cmake pkg-config libc6-dev
      libjansson-dev libxml2-dev libssl-dev libevent-dev libconfig-dev
      libsqlite3-dev libpq-dev libsystemd-dev librabbitmq-dev libarchive-dev openssl
      ca-certificates)
# ewtp-signer's PKCS#11 keys (signer/): libp11 (Debian 12 has no OpenSSL 3 pkcs11 provider).
want+=(libp11-dev)
[ "$profile" = docs ] && want=(doxygen)
if [ "$profile" = run ] || [ "$profile" = test ]; then
  want+=(default-jre-headless libsaxonhe-java libxml2-utils curl)
fi
if [ "$profile" = test ]; then
  want+=(libcmocka-dev xmlsec1 python3 python3-jsonschema sqlite3 clang-format wrk
         rabbitmq-server)
  # The PostgreSQL store's tests start their own throwaway server (tests/pg_test_server.sh):
  # Debian 12's PostgreSQL 15 (initdb, pg_ctl, psql under /usr/lib/postgresql/15/bin).
  want+=(postgresql-15 postgresql-client-15)
  # make bench (run after deps.sh test): instructions per accepted message under callgrind.
  want+=(valgrind)
  # tests/integration/remote_signer: a SoftHSM2 token made by the test (softhsm2-util) and its
  # keys generated on the token (pkcs11-tool, OpenSC).
  want+=(softhsm2 opensc)
fi
# The Debian packages (make package; the package test of make test builds and installs them).
if [ "$profile" = test ] || [ "$profile" = package ]; then
  want+=(dpkg-dev debhelper lintian)
fi
# make fuzz (tests/fuzz/run.sh): libFuzzer comes with clang (libclang-rt-14-dev holds
# libclang_rt.fuzzer); the seeds are written by tests/fuzz/seeds.py.
if [ "$profile" = fuzz ]; then
  want+=(clang libclang-rt-14-dev python3)
fi
missing=()
for p in "${want[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: run 'make deps' as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
# Servers among the packages (rabbitmq-server) must not start on install: the tests start
# their own on private loopback ports, and a broker that fails to start in a container would
# fail the install. policy-rc.d (exit 101: "not allowed") is what invoke-rc.d honours.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
# The cluster the postgresql package creates and starts: the tests never use it.
if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
  service postgresql stop >/dev/null 2>&1 || true
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now postgresql >/dev/null 2>&1 || true
  fi
fi
# The package starts a system broker (and epmd) on install where it can; the AMQP test starts
# its own on private ports, so the system one is stopped and kept from starting at boot.
if [[ " ${missing[*]} " == *" rabbitmq-server "* ]]; then
  service rabbitmq-server stop >/dev/null 2>&1 || true
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now rabbitmq-server epmd.socket epmd.service >/dev/null 2>&1 || true
  fi
fi
