"""Field-by-field comparison of two golden vectors with the reconstructed EIMS samples in
../shared/reference/et/samples (COUNTRY-PLUGIN 6). The samples were written by the reference
team from public clients, not published by the MoR (DECISIONS "Countries with thin
references"): agreement shows our output matches the clients' shape, not the authority's.
Numbers are compared by value (the samples write 500.00 or 500.0, we write 500.00).
Ends with "N passed, M failed"."""
import json
import os
import sys
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("EWTP_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "../../..")))
SHARED = os.environ.get("EWTP_SHARED_DIR", os.path.join(SRC, "../shared"))
VECTORS = os.path.join(HERE, "../vectors")
PAIRS = [("invoice-sample/expected/ET-et-inv-0042.json", "reconstructed-register-invoice-request.json"),
         ("credit-note-sample/expected/ET-et-cre-0043.json",
          "reconstructed-register-credit-note-request.json")]


def load(path):
    with open(path) as f:
        return json.load(f, parse_float=Decimal, parse_int=Decimal)


def diff(a, b, path=""):
    """Every member where a and b differ, as 'pointer: ours != sample'."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append("%s/%s: only in %s" % (path, k, "ours" if k in a else "the sample"))
            else:
                out += diff(a[k], b[k], "%s/%s" % (path, k))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return ["%s: %d items != %d" % (path, len(a), len(b))]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, "%s/%d" % (path, i))]
    return [] if a == b else ["%s: %r != %r" % (path, a, b)]


def main():
    passed = failed = 0
    for ours, theirs in PAIRS:
        d = diff(load(os.path.join(VECTORS, ours)),
                 load(os.path.join(SHARED, "reference/et/samples", theirs)))
        if d:
            failed += 1
            print("FAIL %s differs from %s:\n  %s" % (ours, theirs, "\n  ".join(d)))
        else:
            passed += 1
            print("ok   %s equals %s member by member" % (ours, theirs))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
