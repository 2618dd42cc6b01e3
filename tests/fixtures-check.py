#!/usr/bin/python3
"""fixtures-check.py — TAP: each fixture listed in $FIXTURES/EXPECT (and EXPECT-POLICY,
under the policy the generator wrote) gets its exact verdict, and for a denial the
expected rule (and global) from `modelgate scan`. The in-process scanner
(tests/scan-file) must agree finding for finding, and the JSON of the whole tree
must pass check-report.py. One modelgate process per fixture."""
import concurrent.futures
import json
import os
import subprocess
import sys

MODELGATE = os.environ["MODELGATE"]
SCAN_FILE = os.environ["SCAN_FILE"]
FIXTURES = os.environ["FIXTURES"]
SRCDIR = os.environ.get("TOP_SRCDIR", os.path.join(os.path.dirname(__file__), ".."))
CHECK_REPORT = os.path.join(SRCDIR, "..", "shared", "tools", "check-report.py")
if not os.path.exists(CHECK_REPORT):
    CHECK_REPORT = os.path.join(SRCDIR, "tests", "check-report.py")


def load_expect(name, policy):
    path = os.path.join(FIXTURES, name)
    if not os.path.exists(path):
        return []
    cases = []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        rel, verdict, rule, glob = (line.split("\t") + ["-", "-"])[:4]
        cases.append((rel, verdict, rule, glob, policy))
    return cases


def run_json(cmd):
    p = subprocess.run(cmd, capture_output=True, timeout=120)
    try:
        doc = json.loads(p.stdout.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return p.returncode, None, p.stderr.decode("utf-8", "replace")
    return p.returncode, doc, p.stderr.decode("utf-8", "replace")


def key(f):
    return (f["verdict"], f["format"], sorted((x["rule"], x["severity"], x["global"] or "", x["member"] or "")
                                              for x in f["findings"]))


def check(case):
    rel, verdict, rule, glob, policy = case
    path = os.path.join(FIXTURES, rel)
    pol = ["--policy", policy] if policy else []
    st, doc, err = run_json([MODELGATE, "scan", "--jobs", "1", "--format", "json"] + pol + [path])
    problems = []
    if doc is None or len(doc.get("files", [])) != 1:
        return [f"modelgate gave no usable report (exit {st}): {err.strip()[:300]}"], None
    f = doc["files"][0]
    if f["verdict"] != verdict:
        problems.append(f"verdict {f['verdict']}, expected {verdict}")
    if st != (1 if verdict == "deny" else 0):
        problems.append(f"exit status {st}")
    if verdict == "deny" and rule != "-":
        hits = [x for x in f["findings"] if x["rule"] == rule and (glob == "-" or x["global"] == glob)]
        if not hits:
            problems.append(f"no {rule} finding" + (f" for {glob}" if glob != "-" else ""))
    st2, doc2, err2 = run_json([SCAN_FILE] + pol + [path])
    if doc2 is None or len(doc2.get("files", [])) != 1:
        problems.append(f"scan-file gave no usable report: {err2.strip()[:300]}")
    elif key(doc2["files"][0]) != key(f):
        problems.append("in-process scan differs from the sandboxed one: %s vs %s" % (key(doc2["files"][0]), key(f)))
    return problems, f


def main():
    cases = load_expect("EXPECT", None)
    policy = os.path.join(FIXTURES, "sklearn-policy.json")
    cases += load_expect("EXPECT-POLICY", policy)
    if not cases:
        print("1..0 # SKIP no fixtures were generated")
        return 0
    print(f"1..{len(cases) + 1}", flush=True)
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for i, (case, (problems, f)) in enumerate(zip(cases, pool.map(check, cases)), 1):
            rel, verdict, rule, glob, policy = case
            what = f"{rel}: {verdict}" + (f" {rule}" if verdict == "deny" else "") + (f" {glob}" if glob != "-" else "")
            if policy:
                what += " (with sklearn-policy.json)"
            if problems:
                failed = 1
                print(f"not ok {i} - {what}")
                for p in problems:
                    print(f"# {p}")
                if f:
                    for x in f["findings"]:
                        print(f"#   got {x['severity']} {x['rule']}: {x['message']} [{x['member']}]")
            else:
                print(f"ok {i} - {what}")
            sys.stdout.flush()
    # The whole tree in one report, checked against the DESIGN.md contract.
    p = subprocess.run([MODELGATE, "scan", "--format", "json", FIXTURES], capture_output=True, timeout=600)
    c = subprocess.run([sys.executable, CHECK_REPORT], input=p.stdout, capture_output=True)
    n = len(cases) + 1
    if p.returncode == 1 and c.returncode == 0:
        print(f"ok {n} - report of the whole fixture tree passes check-report.py")
    else:
        failed = 1
        print(f"not ok {n} - report of the whole fixture tree passes check-report.py")
        print("# " + c.stdout.decode()[:2000].replace("\n", "\n# "))
    return failed


sys.exit(main())
