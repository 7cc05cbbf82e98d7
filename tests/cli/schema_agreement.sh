#!/bin/bash
# The JSON Schema (sdk/schema/ewtp-1.schema.json) and the C validator agree on tests/corpus.
# Uses Debian's python3-jsonschema, hence /usr/bin/python3 (not a pyenv python on PATH).
set -euo pipefail
src=${EWTP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
exec /usr/bin/python3 "$src/tests/cli/schema_agreement.py"
