"""Field-level expectations from the authorities' official samples (issue 11.5).

usage: official_samples.py CASE_DIR...

Each CASE_DIR holds input.json (a common message mirroring one official sample), optional
settings.conf (for ewtpctl translate --config) and case.json:

  {"sample": "cn/samples/import/CEB311Message.xml",   (under ../shared/reference)
   "document": "CEB311Message-official-ceb311.xml",   (the file translate writes)
   "now": "2016-03-08T03:27:01Z",
   "scope": "ceb:Order[1]",        (XML: the part of the sample compared; "" = all)
   "namespaces": {"ceb": "..."},
   "same": [path, ...],            (value in our document == value in the official sample)
   "ours": [{"path": p, "expected": v, "why": "..."}],   (legitimately ours: ids, times...)
   "not_ours": [{"path": p, "why": "..."}]}               (in the sample, not produced)

XML paths are ElementTree paths from the root element (prefix:tag, [n] where a tag repeats
among its siblings); with "attributes": true in case.json, attributes are fields too, named
PATH/@name (UBL's currencyID, unitCode, schemeID); JSON paths are JSON Pointers. Every leaf of the sample's scope must be
named in exactly one of same / ours / not_ours, so that no field of the official sample
goes unexamined; "ours" entries must really differ from the sample (else they belong in
same). Prints ok/FAIL lines and "N passed, M failed"; exit 1 on any failure."""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SRC = os.environ.get("EWTP_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
BUILD = os.environ.get("EWTP_BUILD_DIR", os.path.join(SRC, "build"))
SHARED = os.environ.get("EWTP_SHARED_DIR", os.path.join(SRC, "../shared"))
passed, failed = 0, 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + what)
    else:
        failed += 1
        print("FAIL " + what)
    return cond


# ---- XML ------------------------------------------------------------------------------------
def qname(tag, ns_rev):
    uri, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return ("%s:%s" % (ns_rev[uri], local)) if uri else local


def xml_leaves(elem, prefix, ns_rev, out, attributes=False):
    """Canonical paths of the leaf elements under elem (text stripped), and of the attributes
    of every element under it when attributes is set."""
    children = list(elem)
    counts = {}
    for c in children:
        counts[c.tag] = counts.get(c.tag, 0) + 1
    seen = {}
    for c in children:
        seen[c.tag] = seen.get(c.tag, 0) + 1
        step = qname(c.tag, ns_rev)
        if counts[c.tag] > 1:
            step += "[%d]" % seen[c.tag]
        path = prefix + "/" + step if prefix else step
        if len(c):
            xml_leaves(c, path, ns_rev, out, attributes)
        else:
            out.append(path)
        if attributes:
            out.extend("%s/@%s" % (path, qname(a, ns_rev)) for a in c.attrib)


def xml_value(root, path, ns):
    path, _, attr = path.partition("/@")
    e = root.find(path, ns)
    if e is None:
        return None
    if attr:
        return e.get(attr)
    return (e.text or "").strip()


# ---- JSON -----------------------------------------------------------------------------------
def json_leaves(v, prefix, out):
    if isinstance(v, dict):
        for k, x in v.items():
            json_leaves(x, prefix + "/" + k.replace("~", "~0").replace("/", "~1"), out)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            json_leaves(x, "%s/%d" % (prefix, i), out)
    else:
        out.append(prefix)


def json_value(doc, pointer):
    v = doc
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(v, list):
            if not part.isdigit() or int(part) >= len(v):
                return None
            v = v[int(part)]
        elif isinstance(v, dict) and part in v:
            v = v[part]
        else:
            return None
    return v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True)


def run_case(case_dir):
    name = os.path.basename(os.path.normpath(case_dir))
    spec = json.load(open(os.path.join(case_dir, "case.json")))
    sample_path = os.path.join(SHARED, "reference", spec["sample"])
    out = tempfile.mkdtemp(prefix="ewtp-official-")
    argv = [os.path.join(BUILD, "bin", "ewtpctl"), "translate", "--unsigned",
            "--now", spec["now"], "--out", out]
    if os.path.exists(os.path.join(case_dir, "settings.conf")):
        argv[2:2] = ["--config", os.path.join(case_dir, "settings.conf")]
    r = subprocess.run(argv + [os.path.join(case_dir, "input.json")], capture_output=True,
                       text=True)
    if not check(r.returncode == 0, "%s: translate (%s)" % (name, (r.stdout + r.stderr)[:300])):
        return
    ours_path = os.path.join(out, spec["document"])
    if not check(os.path.exists(ours_path), "%s: %s written" % (name, spec["document"])):
        return
    leaves = []
    if spec["sample"].endswith(".xml"):
        ns = spec.get("namespaces", {})
        ns_rev = {v: k for k, v in ns.items()}
        sample_root = ET.parse(sample_path).getroot()
        ours_root = ET.parse(ours_path).getroot()
        scope = spec.get("scope", "")
        base = sample_root.find(scope, ns) if scope else sample_root
        check(base is not None, "%s: the sample has %s" % (name, scope))
        xml_leaves(base, scope, ns_rev, leaves, spec.get("attributes", False))
        # Signature elements are the sender's, never a field to map.
        leaves = [p for p in leaves if not p.startswith("ds:")]

        def sample_v(p):
            return xml_value(sample_root, p, ns)

        def ours_v(p):
            return xml_value(ours_root, p, ns)
    else:
        sample_doc = json.load(open(sample_path, encoding="utf-8-sig"))
        ours_doc = json.load(open(ours_path))
        json_leaves(sample_doc, "", leaves)

        def sample_v(p):
            return json_value(sample_doc, p)

        def ours_v(p):
            return json_value(ours_doc, p)

    same = spec.get("same", [])
    ours = {o["path"]: o for o in spec.get("ours", [])}
    not_ours = {o["path"]: o for o in spec.get("not_ours", [])}
    named = same + list(ours) + list(not_ours)
    dup = sorted({p for p in named if named.count(p) > 1})
    check(not dup, "%s: each path named once (%s)" % (name, dup))
    unnamed = [p for p in leaves if p not in named]
    check(not unnamed, "%s: every field of the official sample is examined (unnamed: %s)"
          % (name, unnamed))
    stray = [p for p in named if p not in leaves]
    check(not stray, "%s: every path named is a field of the sample (not: %s)" % (name, stray))
    bad = []
    for p in same:
        s, o = sample_v(p), ours_v(p)
        if s is None or s != o:
            bad.append("%s: official %r, ours %r" % (p, s, o))
    check(not bad, "%s: %d fields equal to the official sample%s"
          % (name, len(same), "" if not bad else ": " + "; ".join(bad)))
    for p, o in ours.items():
        s, v = sample_v(p), ours_v(p)
        check(v == o["expected"] and s != v,
              "%s: %s is ours: %r (official %r): %s" % (name, p, v, s, o["why"]))
    for p, o in not_ours.items():
        check(ours_v(p) is None, "%s: %s not produced (official %r): %s"
              % (name, p, sample_v(p), o["why"]))
    subprocess.run(["rm", "-rf", out])


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    for d in sys.argv[1:]:
        run_case(d)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
