#!/usr/bin/env bash
# `make build` / `make run` on a machine without the test-only packages (issue 11.1).
# Hides them from a configure + build of this source tree: PATH is a folder of links to every
# program except the test tools (xmllint, xmlsec1, clang-format, java, wrk, rabbitmq, sqlite3,
# curl, python3, softhsm2-util, pkcs11-tool), pkg-config sees every .pc file except cmocka's,
# and python's jsonschema fails to import. Then:
#   - with -DBUILD_TESTING=OFF (what `make build` passes) CMake configures and builds ewtpd,
#     ewtpctl, ewtp-sim and every plugin, and the ewtpctl built validates the spec example;
#   - with the tests on, the configure fails and names each missing tool (never a quiet skip);
#   - scripts/deps.sh's build and run profiles ask for none of the test-only packages, run
#     asks for Java, Saxon-HE and xmllint (the Belgian access point stub), test for them all;
#   - the Makefile's build passes -DBUILD_TESTING=OFF and run uses the run profile.
set -u
src=${EWTP_SOURCE_DIR:?}
shared=${EWTP_SHARED_DIR:-$src/../shared}
tmp=$(mktemp -d /tmp/ewtp-notest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

hidden='^(xmllint|xmlsec1|clang-format.*|java|jshell|keytool|wrk|rabbitmq.*|epmd|erl|sqlite3|curl|'
hidden+='python3.*|softhsm2.*|pkcs11-tool)$'
mkdir -p "$tmp/bin" "$tmp/pc" "$tmp/py/jsonschema"
IFS=: read -r -a path_dirs <<<"$PATH"
for d in "${path_dirs[@]}"; do
  [ -d "$d" ] || continue
  for f in "$d"/*; do
    name=${f##*/}
    [ -x "$f" ] && [ ! -d "$f" ] || continue
    [[ $name =~ $hidden ]] && continue
    [ -e "$tmp/bin/$name" ] || ln -s "$f" "$tmp/bin/$name"
  done
done
IFS=: read -r -a pc_dirs <<<"$(pkg-config --variable pc_path pkg-config)"
for d in "${pc_dirs[@]}" ${PKG_CONFIG_PATH:+${PKG_CONFIG_PATH//:/ }}; do
  [ -d "$d" ] || continue
  for f in "$d"/*.pc; do
    [ -e "$f" ] || continue
    name=${f##*/}
    [ "$name" = cmocka.pc ] && continue
    [ -e "$tmp/pc/$name" ] || ln -s "$f" "$tmp/pc/$name"
  done
done
echo 'raise ImportError("hidden by build_without_test_tools.sh")' >"$tmp/py/jsonschema/__init__.py"
bare=(env -u PKG_CONFIG_PATH PATH="$tmp/bin" PKG_CONFIG_LIBDIR="$tmp/pc" PYTHONPATH="$tmp/py")

# The hiding works (otherwise the rest proves nothing).
for t in xmllint xmlsec1 clang-format java curl sqlite3 python3; do
  if "${bare[@]}" bash -c "command -v $t" >/dev/null 2>&1; then fail "$t still on the fake PATH"; fi
done
if "${bare[@]}" pkg-config --exists cmocka; then fail "cmocka still visible to pkg-config"; fi
if /usr/bin/env PYTHONPATH="$tmp/py" /usr/bin/python3 -c 'import jsonschema' 2>/dev/null; then
  fail "jsonschema still importable"
fi

# 1. make build's configure and build.
if "${bare[@]}" cmake -S "$src" -B "$tmp/build" -DBUILD_TESTING=OFF \
     -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEWTP_SHARED_DIR="$shared" >"$tmp/configure.log" 2>&1; then
  ok "configure with BUILD_TESTING=OFF and no test tools"
  if "${bare[@]}" cmake --build "$tmp/build" -j2 >"$tmp/build.log" 2>&1; then
    ok "build"
  else
    tail -40 "$tmp/build.log" >&2
    fail "build without the test tools"
  fi
else
  cat "$tmp/configure.log" >&2
  fail "configure with BUILD_TESTING=OFF without the test tools"
fi
for f in bin/ewtpd bin/ewtpctl bin/ewtp-sim sdk/libewtp.so; do
  [ -x "$tmp/build/$f" ] || [ -f "$tmp/build/$f" ] || fail "$f not built"
done
for cc in cn be my; do
  for so in ewtp-$cc.so ewtp-sim-$cc.so; do
    [ -f "$tmp/build/plugins/$so" ] || fail "plugins/$so not built"
  done
done
if [ -x "$tmp/build/bin/ewtpctl" ]; then
  if "$tmp/build/bin/ewtpctl" validate "$src/tests/corpus/valid/spec-example-order.json" >/dev/null; then
    ok "the ewtpctl built validates the spec example"
  else
    fail "ewtpctl validate spec-example-order.json"
  fi
fi
if [ -d "$tmp/build/tests" ] && ls "$tmp/build/tests"/test_* >/dev/null 2>&1; then
  fail "BUILD_TESTING=OFF still built tests"
fi

# 2. With the tests on, the configure fails and names what is missing.
if "${bare[@]}" cmake -S "$src" -B "$tmp/build-test" -DEWTP_SHARED_DIR="$shared" \
     >"$tmp/configure-test.log" 2>&1; then
  fail "configure with the tests on succeeded without the test tools"
else
  before=$fails
  for want in "cmocka (libcmocka-dev)" "xmllint (libxml2-utils)" "xmlsec1 (xmlsec1)" \
              "java (default-jre-headless)" "clang-format (clang-format)" \
              "jsonschema (python3-jsonschema)" "softhsm2-util (softhsm2)" \
              "pkcs11-tool (opensc)"; do
    grep -qF "$want" "$tmp/configure-test.log" || fail "configure error does not name $want"
  done
  [ $fails -eq $before ] && ok "configure with the tests on fails naming the missing tools"
fi

# 3. deps.sh profiles: with nothing installed (a dpkg-query that knows no package) and not
#    root, deps.sh lists what it would install.
mkdir -p "$tmp/fakedeb"
printf '#!/bin/sh\nexit 1\n' >"$tmp/fakedeb/dpkg-query"
printf '#!/bin/sh\necho 1000\n' >"$tmp/fakedeb/id"
chmod +x "$tmp/fakedeb/dpkg-query" "$tmp/fakedeb/id"
before=$fails
test_only="libcmocka-dev xmlsec1 python3-jsonschema clang-format wrk rabbitmq-server softhsm2 opensc"
for profile in build run test; do
  out=$(PATH="$tmp/fakedeb:$PATH" bash "$src/scripts/deps.sh" $profile 2>&1 | head -1)
  case $out in *"missing Debian packages:"*) ;; *) fail "deps.sh $profile: $out"; continue ;; esac
  pkgs=" ${out#*missing Debian packages: } "
  for p in $test_only; do
    if [ $profile = test ]; then
      [[ $pkgs == *" $p "* ]] || fail "deps.sh test does not install $p"
    else
      [[ $pkgs == *" $p "* ]] && fail "deps.sh $profile installs the test-only $p"
    fi
  done
  for p in default-jre-headless libsaxonhe-java libxml2-utils; do
    if [ $profile = build ]; then
      [[ $pkgs == *" $p "* ]] && fail "deps.sh build installs $p"
    else
      [[ $pkgs == *" $p "* ]] || fail "deps.sh $profile does not install $p"
    fi
  done
done
[ $fails -eq $before ] && ok "deps.sh build/run/test profiles"

# 4. The Makefile wires them.
make -s -n -C "$src" build | grep -q -- '-B build .*-DBUILD_TESTING=OFF' ||
  fail "make build does not configure with -DBUILD_TESTING=OFF"
make -s -n -C "$src" run | grep -q 'scripts/deps.sh run' || fail "make run does not use deps.sh run"
make -s -n -C "$src" build | grep -q 'scripts/deps.sh build' || fail "make build does not use deps.sh build"
make -s -n -C "$src" test | grep -q 'scripts/deps.sh test' || fail "make test does not use deps.sh test"

[ $fails -eq 0 ] && echo "build without test tools: all checks passed" && exit 0
echo "build without test tools: $fails failed" >&2
exit 1
