#!/usr/bin/env bash
# Builds the Debian packages (make package): copies the source tree (tracked and untracked
# files git does not ignore, as they are in the working tree) to WORK/ewtp-<version>/, puts
# packaging/debian/ there as debian/, runs dpkg-buildpackage -us -uc -b with
# DEB_BUILD_OPTIONS="nocheck parallel=2 noautodbgsym" and copies the .deb files into OUT.
# Usage: scripts/package.sh [WORK [OUT]]   (default build/pkg and build/deb)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$root/build/pkg}
out=${2:-$root/build/deb}
for tool in dpkg-buildpackage dh; do
  command -v "$tool" >/dev/null || {
    echo "package: $tool is missing: scripts/deps.sh test installs dpkg-dev and debhelper" >&2
    exit 2
  }
done
version=$(sed -n '1s/^ewtp (\([^)]*\)).*/\1/p' "$root/packaging/debian/changelog")
[ -n "$version" ] || { echo "package: no version in packaging/debian/changelog" >&2; exit 2; }
src=$work/ewtp-$version
rm -rf "$work"
mkdir -p "$src" "$out"

# The tree as it is, without build folders, var/ or .git.
cd "$root"
if [ -d .git ] || git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar -c --null -T - -f - | tar -x -C "$src"
else
  tar -c --exclude='./build' --exclude='./build-*' --exclude='./var' --exclude='./.git' -f - . |
    tar -x -C "$src"
fi
rm -rf "$src/debian"
cp -a packaging/debian "$src/debian"

cd "$src"
# No -dbgsym packages: build/deb holds what a hub installs.
DEB_BUILD_OPTIONS="nocheck parallel=2 noautodbgsym ${DEB_BUILD_OPTIONS:-}" \
  dpkg-buildpackage -us -uc -b
rm -f "$out"/*.deb
cp "$work"/*.deb "$out"/
echo "package: $(ls "$out"/*.deb | wc -l) packages in $out"
ls "$out"
