#!/usr/bin/env bash
# Every C source and header follows the root .clang-format (STYLE.md §4): `make format` fixes.
set -eu
: "${EWTP_SOURCE_DIR:?}"
cd "$EWTP_SOURCE_DIR"
command -v clang-format >/dev/null || { echo "clang-format missing (scripts/deps.sh test installs it)"; exit 1; }
mapfile -t files < <(find sdk daemon plugins tests -name '*.[ch]' -not -path '*/build*' | sort)
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "FAIL: $f is not clang-formatted"
    bad=$((bad + 1))
  fi
done
echo "$((${#files[@]} - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
