#!/usr/bin/env python3
# Vendored from the project's shared/tools/check-report.py (the DESIGN.md contract checker) so that
# tests run on a fresh clone; tests prefer ../shared/tools/check-report.py when it is present.
"""Checks that a `modelgate scan --format json` document follows DESIGN.md.

usage: modelgate scan --format json PATH... | check-report.py
       check-report.py REPORT.json
Prints each violation and exits 1, or prints 'report ok: N files' and exits 0.
Standard library only."""
import json, re, sys

VERDICTS = {"allow", "deny"}
SEVERITIES = {"critical", "high", "medium", "low", "info"}
RULES = {"UNSAFE_IMPORT", "PICKLE_OBFUSCATION", "NESTED_PICKLE", "MALFORMED", "ARCHIVE_TAMPERED",
         "UNSUPPORTED_CONTAINER", "LFS_POINTER", "HASH_MISMATCH", "RESTRICTED_LICENSE",
         "MISSING_LICENSE", "KERAS_LAMBDA", "KERAS_UNSAFE_CLASS", "ONNX_EXTERNAL_DATA",
         "TEMPLATE_INJECTION", "TORCHSCRIPT_CODE", "SCAN_ERROR", "SCAN_TIMEOUT"}
GLOBAL = re.compile(r"^[^:\s]+:[^:\s]+$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check(doc):
    errs = []
    def need(obj, key, types, where):
        if key not in obj:
            errs.append(f"{where}: missing '{key}'")
            return None
        if not isinstance(obj[key], types):
            errs.append(f"{where}: '{key}' has type {type(obj[key]).__name__}")
            return None
        return obj[key]
    if not isinstance(doc, dict):
        return ["top level is not an object"]
    if doc.get("tool") != "modelgate":
        errs.append("top: 'tool' is not \"modelgate\"")
    need(doc, "version", str, "top")
    pol = need(doc, "policy", dict, "top")
    if pol is not None:
        need(pol, "source", str, "policy")
        need(pol, "sha256", str, "policy")
    files = need(doc, "files", list, "top") or []
    for i, f in enumerate(files):
        w = f"files[{i}]"
        if not isinstance(f, dict):
            errs.append(f"{w}: not an object"); continue
        need(f, "path", str, w)
        v = need(f, "verdict", str, w)
        if v is not None and v not in VERDICTS:
            errs.append(f"{w}: verdict '{v}'")
        need(f, "format", str, w)
        need(f, "size", int, w)
        sha = need(f, "sha256", (str, type(None)), w)
        if isinstance(sha, str) and not HEX64.match(sha):
            errs.append(f"{w}: sha256 '{sha}' is not 64 lowercase hex digits")
        need(f, "license", (str, type(None)), w)
        for g in need(f, "globals", list, w) or []:
            if not isinstance(g, str) or not GLOBAL.match(g):
                errs.append(f"{w}: global {g!r} is not 'module:qualname'")
        worst = False
        for j, x in enumerate(need(f, "findings", list, w) or []):
            wx = f"{w}.findings[{j}]"
            r = need(x, "rule", str, wx)
            if r is not None and r not in RULES:
                errs.append(f"{wx}: rule '{r}' is not in DESIGN.md")
            s = need(x, "severity", str, wx)
            if s is not None and s not in SEVERITIES:
                errs.append(f"{wx}: severity '{s}'")
            need(x, "message", str, wx)
            g = need(x, "global", (str, type(None)), wx)
            if isinstance(g, str) and not GLOBAL.match(g):
                errs.append(f"{wx}: global {g!r} is not 'module:qualname'")
            need(x, "via", (str, type(None)), wx)
            need(x, "member", (str, type(None)), wx)
            worst = worst or s in ("critical", "high")
        if v == "deny" and not (f.get("findings")):
            errs.append(f"{w}: denied with no finding to say why")
    summ = need(doc, "summary", dict, "top")
    if summ is not None:
        n = need(summ, "files", int, "summary")
        a = need(summ, "allowed", int, "summary")
        d = need(summ, "denied", int, "summary")
        need(summ, "by_rule", dict, "summary")
        if None not in (n, a, d) and (n != len(files) or a + d != n):
            errs.append(f"summary: files={n} allowed={a} denied={d} but {len(files)} file entries")
        if d is not None and d != sum(1 for f in files if isinstance(f, dict) and f.get("verdict") == "deny"):
            errs.append("summary: denied does not match the file entries")
    return errs


def main():
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        print(f"not JSON: {e}"); return 1
    errs = check(doc)
    for e in errs:
        print(e)
    if errs:
        return 1
    print(f"report ok: {len(doc['files'])} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
