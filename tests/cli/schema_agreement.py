#!/usr/bin/python3
"""Checks that sdk/schema/ewtp-1.schema.json agrees with the C validator on tests/corpus.

Every valid/*.json must be accepted by the schema. Every invalid/*.json must be rejected,
except where the schema cannot see the problem:
  - the .expect lists only codes of checks the schema cannot express: "rule" and "range"
    (arithmetic) and "duplicate" (line numbers unique);
  - the file is refused before it is read (every entry has pointer "" and code
    encoding / depth / size / duplicate): those are byte-level limits of the C parser;
  - the .expect has a line "# c-only: <why>" (e.g. a CN-RIC check digit).
Those are reported as skipped. Draft 2020-12, format checking off (patterns carry formats).
Run with Debian's /usr/bin/python3 (python3-jsonschema). Exits 1 on any disagreement.
"""
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    print("schema_agreement: python3-jsonschema is not installed for", sys.executable)
    sys.exit(2)

SRC = os.environ.get("EWTP_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
SCHEMA = os.path.join(SRC, "sdk", "schema", "ewtp-1.schema.json")
CORPUS = os.path.join(SRC, "tests", "corpus")

C_ONLY_CODES = {"rule", "range", "duplicate"}
PREPARSE_CODES = {"encoding", "depth", "size", "duplicate"}


def read_expect(path):
    """[(pointer, code)], c_only reason or None."""
    entries, c_only = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                if line.startswith("# c-only:"):
                    c_only = line[len("# c-only:"):].strip()
                continue
            pointer, code = line.rsplit(None, 1)
            entries.append(("" if pointer == '""' else pointer, code))
    return entries, c_only


def load(path):
    """The JSON value, or None when Python's parser refuses the bytes too."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def first_error(validator, doc):
    errs = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if not errs:
        return None
    e = errs[0]
    return "/" + "/".join(str(p) for p in e.absolute_path) + ": " + e.message[:160]


def main():
    with open(SCHEMA, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    bad, skipped, ok = [], [], 0

    vdir = os.path.join(CORPUS, "valid")
    for name in sorted(os.listdir(vdir)):
        if not name.endswith(".json"):
            continue
        doc = load(os.path.join(vdir, name))
        why = "not JSON" if doc is None else first_error(validator, doc)
        if why:
            bad.append(f"valid/{name}: the schema rejects it: {why}")
        else:
            ok += 1

    idir = os.path.join(CORPUS, "invalid")
    for name in sorted(os.listdir(idir)):
        if not name.endswith(".json"):
            continue
        exp_path = os.path.join(idir, name[:-5] + ".expect")
        if not os.path.exists(exp_path):
            bad.append(f"invalid/{name}: no .expect file")
            continue
        entries, c_only = read_expect(exp_path)
        codes = {c for _, c in entries}
        if not entries:
            bad.append(f"invalid/{name}: .expect lists nothing")
            continue
        if c_only:
            skipped.append(f"invalid/{name} (c-only: {c_only})")
            continue
        if codes <= C_ONLY_CODES:
            skipped.append(f"invalid/{name} (codes {', '.join(sorted(codes))}: C only)")
            continue
        if all(p == "" for p, _ in entries) and codes <= PREPARSE_CODES:
            skipped.append(f"invalid/{name} (refused before parsing: {', '.join(sorted(codes))})")
            continue
        doc = load(os.path.join(idir, name))
        if doc is None:
            ok += 1  # not JSON for Python either: rejected
            continue
        if validator.is_valid(doc):
            listed = "; ".join((p or '""') + " " + c for p, c in entries)
            bad.append(f"invalid/{name}: the schema accepts it, the C validator reports "
                       + listed)
        else:
            ok += 1

    for s in skipped:
        print("skip:", s)
    for b in bad:
        print("DISAGREE:", b)
    print(f"schema agreement: {ok} agree, {len(skipped)} skipped (checks the schema cannot "
          f"express), {len(bad)} disagree")
    return 1 if bad or ok == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
