#!/usr/bin/env bash
# Every metric the Grafana dashboard queries is one ewtpd exports (names checked against the
# daemon's /metrics writers), so the dashboard cannot silently show empty panels.
set -eu
: "${EWTP_SOURCE_DIR:?}"
dash="$EWTP_SOURCE_DIR/packaging/grafana/ewtp-dashboard.json"
names=$(grep -o 'ewtp_[a-z_]*' "$dash" | sed -E 's/_(bucket|count|sum)$//' | sort -u)
pass=0 fail=0
for n in $names; do
  if grep -q "\"# TYPE $n \|\"$n\|$n{\|$n %\|\"# HELP $n " "$EWTP_SOURCE_DIR"/daemon/api/http.c "$EWTP_SOURCE_DIR"/daemon/core/metrics.c; then
    pass=$((pass + 1))
  else
    echo "FAIL: dashboard queries $n, which ewtpd does not export"; fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 5 ]
