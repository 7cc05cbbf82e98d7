#!/usr/bin/env bash
# package/debs (make package-test, and ctest in make test): the Debian packages, end to end on
# this machine.
#   1. libewtp1.symbols lists exactly libewtp.map's exports (fast, before anything is built);
#   2. scripts/package.sh builds the packages once (non-sanitized) in a folder of its own
#      under /tmp (never build/ or build-test/); lintian reports no error;
#   3. apt-get install ./*.deb; /usr/sbin/ewtpd -t -c /etc/ewtpd/ewtpd.conf exits 0 (as root
#      and as the ewtpd user), the installed binaries find the installed plugins in their
#      default plugin_dir, the installed unit rates <= 2.0 (systemd-analyze security);
#   4. the installed template (/usr/share/ewtp/plugin-template) copied to a temporary folder
#      builds with cmake against the installed SDK alone (and with pkg-config), and the
#      installed ewtpctl passes `plugin check` on it with its vectors; so does a plugin made
#      by the installed `ewtpctl plugin new` (which finds the installed template);
#   5. apt-get purge: every file the packages listed (dpkg -L) is gone, and so are
#      /etc/ewtpd, the plugin directory, the state and spool folders and the unit's enable
#      links; only the ewtpd system user stays (Debian policy).
# The installed ewtpd is never started (a policy-rc.d keeps the package from starting it where
# systemd runs; nothing here starts it).
# Whatever happens, the packages are purged and the folder removed again (trap). A lock keeps
# two runs on one machine apart. Needs root (apt-get): otherwise exit 77, which ctest reports
# as skipped.
set -euo pipefail
src=${EWTP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
pkgs=(ewtpd libewtp1 libewtp-dev ewtp-signer ewtp-plugin-cn ewtp-plugin-be ewtp-plugin-my ewtp-plugin-rw
      ewtp-plugin-et)
t0=$(date +%s)
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the package test installs packages with apt-get: run it as root" >&2
  exit 77
fi

# 1. The symbols file against the version script.
map_syms=$(sed -e 's:/\*.*\*/::' -e '/\/\*/,/\*\//d' "$src/sdk/libewtp.map" |
  awk '/^[ \t]*EWTP_[0-9.]+[ \t]*\{/ {node=$1; sub(/\{/, "", node); print node "@" node; next}
       /global:|local:|^[ \t]*\}|\*;/ {next}
       node != "" && /;/ {s=$1; sub(/;/, "", s); print s "@" node}' | sort)
deb_syms=$(awk '/^ [^ ]+@EWTP_/ {print $1}' "$src/packaging/debian/libewtp1.symbols" | sort)
if [ "$map_syms" != "$deb_syms" ]; then
  echo "FAIL: packaging/debian/libewtp1.symbols does not list libewtp.map's exports:" >&2
  diff <(echo "$map_syms") <(echo "$deb_syms") | sed -n 's/^</  only in libewtp.map:/p; s/^>/  only in libewtp1.symbols:/p' >&2
  echo "  (a new node EWTP_1.N: add ' symbol@EWTP_1.N <version>' lines, CONTRIBUTING.md)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/ewtp-pkgtest.XXXXXX)
marker=/var/lib/ewtp-package-test.installed
installed=false
policy=/usr/sbin/policy-rc.d
made_policy=false
purge_all() {
  local present=()
  for p in "${pkgs[@]}"; do
    if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
      present+=("$p")
    fi
  done
  [ ${#present[@]} -eq 0 ] ||
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=600 "${present[@]}"
}
cleanup() {
  local rc=$?
  set +e
  ! $made_policy || rm -f "$policy"
  if $installed; then
    purge_all >"$work/cleanup-purge.log" 2>&1 || cat "$work/cleanup-purge.log" >&2
    rm -f "$marker"
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One run at a time on this machine (the packages and /etc/ewtpd are shared).
exec 9>/run/lock/ewtp-package-test.lock
flock -w 3600 9

# A run killed without its trap leaves its marker: purge what it installed first. Packages
# installed by someone else are theirs: refuse to purge them.
if [ -e "$marker" ]; then
  installed=true
  purge_all
  rm -f "$marker"
  installed=false
fi
for p in "${pkgs[@]}"; do
  if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
    echo "FAIL: $p is already installed on this machine; the package test installs and purges" \
         "the ewtp packages: remove them first (apt-get purge ${pkgs[*]})" >&2
    exit 1
  fi
done

# 2. Build (once) and lintian.
step "building the packages in $work"
if ! "$src/scripts/package.sh" "$work/pkg" "$work/deb" >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  fail "scripts/package.sh failed (log above)"
  exit 1
fi
ls "$work/deb"
step "lintian"
lintian_out=$(lintian --fail-on error "$work"/pkg/*.changes 2>&1) || fail "lintian reports errors"
echo "$lintian_out" | grep -v '^running with root' || true
echo "lintian: $(echo "$lintian_out" | grep -c '^E:' || true) errors," \
     "$(echo "$lintian_out" | grep -c '^W:' || true) warnings"

# 3. Install on this machine.
step "apt-get install"
user_before=$(getent passwd ewtpd || true)
touch "$marker"
installed=true
# The package starts ewtpd where systemd runs: not here (policy-rc.d's 101, "not allowed", is
# what deb-systemd-invoke honours), so that it never takes a port another test uses.
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && made_policy=true
fi
install_ok=true
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  -o DPkg::Lock::Timeout=600 "$work"/deb/*.deb >"$work/install.log" 2>&1 || install_ok=false
! $made_policy || rm -f "$policy"
made_policy=false
if ! $install_ok; then
  cat "$work/install.log" >&2
  fail "apt-get install ./*.deb failed"
  exit 1
fi
for p in "${pkgs[@]}"; do
  dpkg -L "$p" >>"$work/files.list" || fail "$p is not installed"
done
plugin_dir=$(pkg-config --variable=plugindir ewtp)
[ -n "$plugin_dir" ] && [ -f "$plugin_dir/ewtp-cn.so" ] ||
  fail "pkg-config ewtp: plugindir '$plugin_dir' has no ewtp-cn.so"
getent passwd ewtpd >/dev/null || fail "no ewtpd system user after install"
for d in /var/spool/ewtpd /var/lib/ewtpd; do
  [ "$(stat -c %U 2>/dev/null "$d")" = ewtpd ] ||
    fail "$d missing or not owned by ewtpd (tmpfiles.d, after sysusers.d)"
done
dpkg-query -W -f='${Conffiles}\n' ewtpd | grep -q '^ /etc/ewtpd/ewtpd.conf ' ||
  fail "/etc/ewtpd/ewtpd.conf is not a conffile of ewtpd"

step "the installed configuration"
# As the unit's ExecStartPre= runs it: user ewtpd, /run/ewtpd made by RuntimeDirectory=.
install -d -o ewtpd -g ewtpd -m 0750 /run/ewtpd
out=$(runuser -u ewtpd -- /usr/sbin/ewtpd -t -c /etc/ewtpd/ewtpd.conf 2>&1) ||
  fail "ewtpd -t as the ewtpd user: $out"
out=$(/usr/sbin/ewtpd -t -c /etc/ewtpd/ewtpd.conf 2>&1) ||
  fail "/usr/sbin/ewtpd -t -c /etc/ewtpd/ewtpd.conf: $out"
echo "$out"
# Every packaged plugin, from the default plugin_dir (the ABI major's folder), in a
# configuration of each (state_dir in the temporary folder: -t copies the plugins there).
mkdir -p "$work/state" "$work/spool"
{
  echo "listeners = ( { address = \"127.0.0.1\"; port = 0; } );"
  echo "state_dir = \"$work/state\";"
  echo "store = { path = \"$work/state/ewtpd.sqlite\"; };"
  echo "plugins = ("
  sep=""
  for cc in cn be my rw et; do
    echo "  $sep{ name = \"$cc-test\"; plugin = \"$cc\"; transport = \"spool\"; spool_out = \"$work/spool\"; }"
    sep=", "
  done
  echo ");"
} >"$work/plugins.conf"
out=$(/usr/sbin/ewtpd -t -c "$work/plugins.conf" 2>&1) ||
  fail "installed ewtpd with every installed plugin from its default plugin_dir: $out"
echo "$out"
out=$(cd "$work" && /usr/bin/ewtpctl plugin check 2>&1) ||
  fail "installed ewtpctl plugin check (default plugin_dir): $(echo "$out" | tail -5)"
echo "$out" | tail -1

unit=$(dpkg -L ewtpd | grep '/systemd/system/ewtpd.service$')
if command -v systemd-analyze >/dev/null && \
   sa=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1); then
  level=$(echo "$sa" | sed -n 's/.*Overall exposure level for ewtpd.service: \([0-9.]*\).*/\1/p')
  echo "systemd-analyze security $unit: ${level:-?}"
  if [ -z "$level" ] || ! awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
    fail "the installed unit rates '${level:-?}' (> 2.0): $(echo "$sa" | tail -3)"
  fi
else
  echo "systemd-analyze security --offline is not available here: unit rating not checked"
fi
grep -q '^ExecReload=/usr/bin/ewtpctl -c /etc/ewtpd/ewtpd.conf reload --wait$' "$unit" ||
  fail "$unit: ExecReload is not ewtpctl reload --wait"

# 4. The template, out of tree, with nothing but the installed SDK: a clean environment, a
# folder outside the source tree, and no path of the source tree in what the build used.
# build_standalone DIR CC: cmake -S DIR -B DIR/build, then the installed ewtpctl's plugin check
# of DIR/build/plugins/ewtp-CC.so with DIR/vectors.
build_standalone() {
  local dir=$1 cc=$2
  (
    cd "$dir"
    env -i PATH=/usr/bin:/bin HOME="$work" cmake -S . -B build >"$dir.log" 2>&1 &&
      env -i PATH=/usr/bin:/bin HOME="$work" cmake --build build -j2 >>"$dir.log" 2>&1
  ) || { cat "$dir.log" >&2; fail "$dir does not build against the installed SDK"; return; }
  local so="$dir/build/plugins/ewtp-$cc.so" out exported
  if grep -rqs -- "$src" "$dir/build"; then
    fail "the build of $dir refers to the source tree $src"
  fi
  exported=$(nm -D --defined-only "$so" | awk '$2 ~ /[TDRB]/ {print $3}' | grep -v '^_' || true)
  [ "$exported" = ewtp_plugin_v1 ] || fail "$so exports: $exported"
  out=$(/usr/bin/ewtpctl plugin check "$so" --vectors "$dir/vectors" 2>&1) ||
    fail "ewtpctl plugin check $so: $(echo "$out" | grep -v '^ok' | tail -20)"
  echo "$(basename "$so"): $(echo "$out" | tail -1)"
}
step "the installed plugin template, out of tree"
# The build copy goes first: nothing may find the template, or anything else, there.
rm -rf "$work/pkg"
cp -r /usr/share/ewtp/plugin-template "$work/template"
build_standalone "$work/template" zz
# What a country team does: ewtpctl plugin new from the installed template (found where
# libewtp-dev put it), built the same way.
out=$(cd "$work" && /usr/bin/ewtpctl plugin new qz --dir "$work/qz" 2>&1) ||
  fail "installed ewtpctl plugin new: $out"
[ -d "$work/qz" ] && build_standalone "$work/qz" qz
# The same sources with pkg-config alone.
# shellcheck disable=SC2046
(cd "$work/template" && cc -std=c11 -Wall -Wextra -fPIC -shared -fvisibility=hidden \
   $(pkg-config --cflags ewtp) zz_plugin.c zz_translate.c zz_interpret.c -o "$work/zz-pc.so" \
   -Wl,-z,defs $(pkg-config --libs ewtp)) || fail "pkg-config ewtp: the template does not build"

# 5. Purge, and what is left.
step "apt-get purge"
# What the service would have made at run time (StateDirectory=, logs): purge removes it.
install -d -o ewtpd -g ewtpd /var/log/ewtpd
runuser -u ewtpd -- touch /var/lib/ewtpd/ewtpd.sqlite
if ! purge_all >"$work/purge.log" 2>&1; then
  cat "$work/purge.log" >&2
  fail "apt-get purge failed"
fi
installed=false
rm -f "$marker"
left=()
while IFS= read -r path; do
  [ -n "$path" ] && [ "$path" != "/." ] || continue
  [ -e "$path" ] || [ -L "$path" ] || continue
  # A folder other packages use too (/usr/bin, /usr/lib/<triplet>, ...) stays, and so do
  # the merged-/usr links (/lib -> usr/lib).
  if [ -d "$path" ] && { [ -L "$path" ] || dpkg -S "$path" >/dev/null 2>&1; }; then
    continue
  fi
  left+=("$path")
done < <(sort -u "$work/files.list")
for path in /etc/ewtpd "$plugin_dir" "$(dirname "$plugin_dir")" /usr/share/ewtp /var/lib/ewtpd \
            /var/log/ewtpd /var/spool/ewtpd /etc/systemd/system/multi-user.target.wants/ewtpd.service \
            /var/lib/systemd/deb-systemd-helper-enabled/ewtpd.service.dsh-also; do
  if [ -e "$path" ] || [ -L "$path" ]; then
    left+=("$path")
  fi
done
[ ${#left[@]} -eq 0 ] || fail "left after purge: ${left[*]}"
getent passwd ewtpd >/dev/null || fail "the ewtpd system user was removed (policy: it stays)"
[ -n "$user_before" ] || echo "the ewtpd system user stays (Debian policy)"

step "done"
if [ $fails -ne 0 ]; then
  echo "$fails failure(s)" >&2
  exit 1
fi
echo "package/debs: ok in $(($(date +%s) - t0)) s"
