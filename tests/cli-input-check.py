#!/usr/bin/env python3
"""cli-input-check.py — reads one `modelgate scan` run of the bad-input tree made by
tests/cli-input.sh and checks one property of it; exit 0 when it holds, else 1 with
the reason on stderr. Standard library only.

usage: cli-input-check.py CHECK FORMAT OUT ERR
  CHECK  clean-bytes  stdout and stderr are UTF-8 with no control byte but the
                      line ends of the format (and no DEL)
         parses       the format's own reader takes stdout (json.loads, csv, SARIF's
                      JSON, text: one "PATH: ALLOW|DENY FORMAT" line per file and
                      one "PATH: SEVERITY RULE: message" line per finding)
         verdicts     every file of the tree has its verdict; every input that could
                      not be read is listed with SCAN_ERROR; nothing skipped is listed
         stderr       one line per bad input, naming it escaped, saying what it is
Environment: TREE (the tree's path as given to modelgate, ASCII), UNREADABLE (1 when
the run could not read unreadable.pkl), DEVICES (1 when the tree has device nodes).
"""
import csv, io, json, os, re, sys, urllib.parse

check, fmt, out_path, err_path = sys.argv[1:5]
out = open(out_path, "rb").read()
err = open(err_path, "rb").read()
tree = os.environ["TREE"]
unreadable = os.environ.get("UNREADABLE") == "1"
devices = os.environ.get("DEVICES") == "1"

# Raw name -> (escaped name as reports print it, verdict, a rule it must have or None).
FILES = {
    b"good.pkl": ("good.pkl", "allow", None),
    b"evil.pkl": ("evil.pkl", "deny", "UNSAFE_IMPORT"),
    b"sparse.bin": ("sparse.bin", "allow", None),
    b"new\nline.pkl": ("new\\x0aline.pkl", "deny", "UNSAFE_IMPORT"),
    b"tab\there.pkl": ("tab\\x09here.pkl", "deny", "UNSAFE_IMPORT"),
    b"bad\xff\xfename.pkl": ("bad\\xff\\xfename.pkl", "deny", "UNSAFE_IMPORT"),
    b'q"uo,te\\back.pkl': ('q"uo,te\\x5cback.pkl', "deny", "UNSAFE_IMPORT"),
    b"dangling.bin": ("dangling.bin", "deny", "SCAN_ERROR"),
    b"self-loop.bin": ("self-loop.bin", "deny", "SCAN_ERROR"),
}
FILES[b"unreadable.pkl"] = ("unreadable.pkl", "deny", "SCAN_ERROR") if unreadable else ("unreadable.pkl", "allow", None)
SKIPPED = {"fifo.bin": "a FIFO", "sock.bin": "a socket", "zero-link.bin": "a device",
           "null-link.bin": "a device", "up": "symbolic link to a directory (not followed)"}
if devices:
    SKIPPED.update({"zero.dev": "a device", "null.dev": "a device"})
ERRORS = {"dangling.bin": "dangling symbolic link: No such file or directory",
          "self-loop.bin": "dangling symbolic link: Too many levels of symbolic links"}
if unreadable:
    ERRORS["unreadable.pkl"] = "cannot open: Permission denied"


def fail(msg):
    print(f"# {fmt} {check}: {msg}", file=sys.stderr)
    sys.exit(1)


def rows():
    """(path, verdict, set of rules) per file, from stdout in this format."""
    got = {}
    if fmt == "json":
        doc = json.loads(out)
        for f in doc["files"]:
            got[f["path"]] = (f["verdict"], {x["rule"] for x in f["findings"]})
        if doc["summary"]["files"] != len(doc["files"]):
            fail("summary.files differs from the number of files")
    elif fmt == "sarif":
        doc = json.loads(out)
        for r in doc["runs"][0]["results"]:
            uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            if not re.fullmatch(r"[A-Za-z0-9._~/%-]*", uri):
                fail(f"uri {uri!r} has characters a URI reference must encode")
            raw = urllib.parse.unquote_to_bytes(uri)   # the file's own bytes
            v, rules = got.setdefault(raw, (r["properties"]["verdict"], set()))
            rules.add(r["ruleId"])
    elif fmt == "csv":
        text = out.decode("utf-8")
        if text and not text.endswith("\r\n"):
            fail("the last record has no CRLF")
        recs = list(csv.reader(io.StringIO(text, newline="")))
        head = recs[0]
        if head[0] != "path" or "verdict" not in head or "rule" not in head:
            fail(f"header is {head}")
        for rec in recs[1:]:
            if len(rec) != len(head):
                fail(f"a record has {len(rec)} fields, the header {len(head)}: {rec}")
            rec = dict(zip(head, rec))
            v, rules = got.setdefault(rec["path"], (rec["verdict"], set()))
            if rec["rule"]:
                rules.add(rec["rule"])
    else:
        lines = out.decode("utf-8").split("\n")
        if lines[-1] != "":
            fail("output does not end with a newline")
        summary = [i for i, l in enumerate(lines)
                   if re.fullmatch(r"\d+ files? scanned: \d+ allowed, \d+ denied( \(.*\))?", l)]
        if len(summary) != 1:
            fail(f"not one summary line: {summary}")
        for line in lines[:summary[0]]:
            m = re.fullmatch(r"(.*): (ALLOW|DENY) ([a-z0-9-]+)(, license .*)?", line)
            if m:
                if m.group(1) in got:
                    fail(f"two verdict lines for {m.group(1)}")
                got[m.group(1)] = (m.group(2).lower(), set())
                continue
            m = re.fullmatch(r"(.*): (CRITICAL|HIGH|MEDIUM|LOW|INFO) ([A-Z_]+): .*", line)
            if not m or m.group(1) not in got:
                fail(f"a line that is neither a verdict nor a finding of a listed file: {line!r}")
            got[m.group(1)][1].add(m.group(3))
    return got


if check == "clean-bytes":
    for name, data in (("stdout", out), ("stderr", err)):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            fail(f"{name} is not UTF-8: {e}")
        allowed = {0x0a} | ({0x0d} if fmt == "csv" and name == "stdout" else set())
        bad = sorted({b for b in data if (b < 0x20 or b == 0x7f) and b not in allowed})
        if bad:
            fail(f"{name} has raw control bytes {bad}")
        if fmt == "csv" and name == "stdout" and re.search(rb"\r(?!\n)|(?<!\r)\n", data):
            fail("a CR or LF in the CSV that is not a CRLF record end")
elif check == "parses":
    got = rows()
    if not got and FILES:
        fail("no file in the output")
elif check == "verdicts":
    got = rows()
    for raw, (esc, verdict, rule) in FILES.items():
        key = tree.encode() + b"/" + raw if fmt == "sarif" else f"{tree}/{esc}"
        if fmt == "sarif" and rule is None:
            continue   # SARIF lists findings only
        if key not in got:
            fail(f"{key!r} is not in the report (have {sorted(got)})")
        v, rules = got[key]
        if v != verdict or (rule and rule not in rules):
            fail(f"{key!r}: {v} {sorted(rules)}, expected {verdict} {rule}")
    for name in SKIPPED:
        key = (tree + "/" + name).encode() if fmt == "sarif" else f"{tree}/{name}"
        if key in got:
            fail(f"{name} was skipped but is in the report")
    extra = set(got) - {(tree.encode() + b"/" + r) if fmt == "sarif" else f"{tree}/{e}"
                        for r, (e, _, _) in FILES.items()}
    if extra:
        fail(f"unexpected entries {sorted(extra)}")
elif check == "stderr":
    lines = err.decode("utf-8").split("\n")
    if lines[-1] != "":
        fail("stderr does not end with a newline")
    want = {f"modelgate: {tree}/{n}: {what}" for n, what in ERRORS.items()}
    want |= {f"modelgate: {tree}/{n}: skipped: {what}" for n, what in SKIPPED.items()}
    n = len(ERRORS)
    want.add(f"modelgate: {n} input{'s' if n != 1 else ''} could not be read")
    have = set(lines[:-1])
    if len(have) != len(lines) - 1:
        fail("a line on stderr is repeated")
    if have != want:
        fail(f"missing {sorted(want - have)}; unexpected {sorted(have - want)}")
else:
    fail("unknown check")
