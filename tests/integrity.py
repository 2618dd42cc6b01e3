#!/usr/bin/python3
"""integrity.py — TAP: expected hashes end to end through the real CLI.
`modelgate manifest` pins a tree; `modelgate scan --manifest` checks it by path (not
basename) with the Hub's tree listing (LFS SHA-256 and git blob SHA-1) and with
modelgate's own format; require_manifest; broken manifests are refused naming the
file; a Hugging Face cache tree (blobs + snapshot symlinks) is verified by blob name
with no manifest at all. Every JSON report goes through check-report.py."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

MODELGATE = os.environ["MODELGATE"]
SRCDIR = os.environ.get("TOP_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CHECK_REPORT = os.path.join(SRCDIR, "..", "shared", "tools", "check-report.py")
if not os.path.exists(CHECK_REPORT):
    CHECK_REPORT = os.path.join(SRCDIR, "tests", "check-report.py")

results = []


def tap(ok, name, diag=None):
    results.append(bool(ok))
    print(("ok" if ok else "not ok") + f" {len(results)} - {name}")
    if diag is not None and not ok:
        for line in str(diag).splitlines()[:25]:
            print("# " + line)
    sys.stdout.flush()


def run(args, **kw):
    return subprocess.run([MODELGATE] + args, capture_output=True, timeout=120, **kw)


def scan_json(args):
    p = run(["scan", "--format", "json"] + args)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        return p.returncode, None, p.stderr.decode("utf-8", "replace")
    chk = subprocess.run([sys.executable, CHECK_REPORT], input=p.stdout, capture_output=True, timeout=60)
    if chk.returncode != 0:
        return p.returncode, None, "check-report.py: " + chk.stdout.decode() + chk.stderr.decode()
    return p.returncode, {f["path"]: f for f in doc["files"]}, p.stderr.decode("utf-8", "replace")


def rules(f):
    return [x["rule"] for x in f["findings"]]


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def main():
    tmp = tempfile.mkdtemp(prefix="mg-integrity-")
    try:
        cases(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{len(results)}")
    return 0 if all(results) else 1


def cases(tmp):
    repo = os.path.join(tmp, "repo")
    files = {
        "config.json": b'{"model_type": "bert"}\n',
        "weights/a/model.bin": b"\x00" * 1000 + b"weights-a",
        "weights/b/model.bin": b"\x00" * 1000 + b"weights-b",
        "README.md": b"# a model\n",
    }
    for rel, data in files.items():
        write(os.path.join(repo, rel), data)

    # modelgate manifest: deterministic, excludes its own output, checks clean.
    out = os.path.join(repo, "modelgate-manifest.json")
    p1 = run(["manifest", "--output", out, repo])
    first = open(out, "rb").read() if os.path.exists(out) else b""
    p2 = run(["manifest", repo])
    man = json.loads(first) if first else {}
    want = {rel: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for rel, d in files.items()}
    tap(p1.returncode == 0 and man.get("files") == want,
        "modelgate manifest DIR writes every file's sha256 and size by relative path, leaving out its own output",
        p1.stderr.decode() + json.dumps(man, indent=1))
    p2_doc = json.loads(p2.stdout) if p2.returncode == 0 else None
    tap(p2_doc is not None and json.dumps(p2_doc, sort_keys=True) == json.dumps(
        {"files": dict(want, **{"modelgate-manifest.json": p2_doc["files"].get("modelgate-manifest.json")})}, sort_keys=True)
        and list(p2_doc["files"]) == sorted(p2_doc["files"]),
        "modelgate manifest to stdout: sorted by path, the same entries", p2.stderr.decode())

    st, rep, err = scan_json(["--manifest", out, repo])
    tap(st == 0 and rep and all(f["verdict"] == "allow" for f in rep.values()),
        "a tree that matches its manifest: every file allowed, exit 0", err if rep is None else rep)
    tap(rep and all(f["sha256"] == want[os.path.relpath(p, repo)]["sha256"] for p, f in rep.items()
                    if os.path.relpath(p, repo) in want),
        "files with a manifest entry carry their sha256 in the report", rep)

    st, rep, err = scan_json([repo])
    tap(st == 0 and rep and all(f["sha256"] is None for f in rep.values()),
        "without an expectation nothing is hashed (sha256 null)", rep)
    st, rep, err = scan_json(["--sha256", repo])
    tap(st == 0 and rep and all(f["sha256"] == hashlib.sha256(open(p, "rb").read()).hexdigest() for p, f in rep.items()),
        "--sha256 hashes every file", rep)

    hpol = os.path.join(tmp, "hash-files.json")
    with open(hpol, "w") as fh:
        fh.write('{"hash_files": true}')
    st, rep, err = scan_json(["--policy", hpol, repo])
    tap(st == 0 and rep and all(f["sha256"] == hashlib.sha256(open(p, "rb").read()).hexdigest() for p, f in rep.items()),
        "policy hash_files: every file hashed, as with --sha256", rep)

    # Tamper with one of two same-named files: matched by path, not basename.
    write(os.path.join(repo, "weights/b/model.bin"), b"\x00" * 1000 + b"weights-X")
    st, rep, err = scan_json(["--manifest", out, repo])
    a = rep and rep.get(os.path.join(repo, "weights/a/model.bin"))
    b = rep and rep.get(os.path.join(repo, "weights/b/model.bin"))
    bad_sha = hashlib.sha256(b"\x00" * 1000 + b"weights-X").hexdigest()
    tap(st == 1 and a and a["verdict"] == "allow" and b and b["verdict"] == "deny" and rules(b) == ["HASH_MISMATCH"],
        "a changed file is HASH_MISMATCH; its namesake in another directory is not", err if rep is None else [a, b])
    msg = b["findings"][0]["message"] if b and b["findings"] else ""
    tap(want["weights/b/model.bin"]["sha256"] in msg and bad_sha in msg and "1009 bytes" in msg
        and b["findings"][0]["severity"] == "critical",
        "the HASH_MISMATCH message names expected and actual hash and size, severity critical", msg)

    # A size change alone (same prefix) is also caught, and the text output shows it.
    write(os.path.join(repo, "README.md"), b"# a model\n\n")
    p = run(["scan", "--manifest", out, os.path.join(repo, "README.md")])
    tap(p.returncode == 1 and b"CRITICAL HASH_MISMATCH" in p.stdout and b"(10 bytes)" in p.stdout and b"(11 bytes)" in p.stdout,
        "text output: CRITICAL HASH_MISMATCH with both sizes", p.stdout.decode())
    write(os.path.join(repo, "README.md"), files["README.md"])
    write(os.path.join(repo, "weights/b/model.bin"), files["weights/b/model.bin"])

    # The Hub's tree listing, as downloaded: LFS entries by lfs.oid (SHA-256),
    # others by oid (git blob SHA-1); "directory" items skipped. --root names the tree.
    tree = []
    for rel, data in sorted(files.items()):
        if rel.endswith(".bin"):
            tree.append({"type": "file", "oid": git_blob_id(b"version https://git-lfs.github.com/spec/v1\n"),
                         "size": len(data), "path": rel,
                         "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}})
        else:
            tree.append({"type": "file", "oid": git_blob_id(data), "size": len(data), "path": rel})
    tree.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": "weights"})
    listing = os.path.join(tmp, "tree.json")
    with open(listing, "w") as fh:
        json.dump(tree, fh)
    st, rep, err = scan_json(["--manifest", listing, "--root", repo, repo])
    tap(st == 0 and rep and all(f["verdict"] == "allow" for f in rep.values()),
        "Hub tree listing with --root: LFS files by SHA-256, small files by git blob id, all match", err if rep is None else rep)
    write(os.path.join(repo, "config.json"), b'{"model_type": "evil"}\n')
    st, rep, err = scan_json(["--manifest", listing, "--root", repo, repo])
    c = rep and rep.get(os.path.join(repo, "config.json"))
    tap(st == 1 and c and rules(c) == ["HASH_MISMATCH"] and "git blob id " + git_blob_id(files["config.json"]) in c["findings"][0]["message"],
        "a changed non-LFS file fails its git blob id from the listing", err if rep is None else c)
    write(os.path.join(repo, "config.json"), files["config.json"])

    # require_manifest: an unlisted file is denied; the manifest itself is not.
    write(os.path.join(repo, "extra.txt"), b"not in the manifest\n")
    strict = os.path.join(tmp, "strict.json")
    with open(strict, "w") as fh:
        fh.write('{"require_manifest": true}')
    st, rep, err = scan_json(["--policy", strict, "--manifest", out, repo])
    ex = rep and rep.get(os.path.join(repo, "extra.txt"))
    mf = rep and rep.get(out)
    tap(st == 1 and ex and rules(ex) == ["HASH_MISMATCH"] and "require_manifest" in ex["findings"][0]["message"]
        and mf and mf["verdict"] == "allow",
        "require_manifest: an unlisted file is denied, the manifest file itself is not", err if rep is None else [ex, mf])
    st, rep, err = scan_json(["--manifest", out, repo])
    ex = rep and rep.get(os.path.join(repo, "extra.txt"))
    tap(st == 0 and ex and ex["verdict"] == "allow", "without require_manifest an unlisted file is allowed", ex)
    os.unlink(os.path.join(repo, "extra.txt"))

    # Policy "manifests": a directory of manifests, roots from their "root" key.
    mdir = os.path.join(tmp, "manifests")
    os.makedirs(mdir)
    with open(os.path.join(mdir, "repo.json"), "w") as fh:
        json.dump({"root": repo, "files": {"weights/a/model.bin": want["weights/a/model.bin"]}}, fh)
    pol = os.path.join(tmp, "pol.json")
    with open(pol, "w") as fh:
        json.dump({"manifests": [mdir]}, fh)
    write(os.path.join(repo, "weights/a/model.bin"), b"tampered")
    st, rep, err = scan_json(["--policy", pol, repo])
    a = rep and rep.get(os.path.join(repo, "weights/a/model.bin"))
    tap(st == 1 and a and rules(a) == ["HASH_MISMATCH"],
        "policy \"manifests\" naming a directory: its manifests apply, rooted by their \"root\" key", err if rep is None else a)
    write(os.path.join(repo, "weights/a/model.bin"), files["weights/a/model.bin"])

    # Broken manifests: exit 2, naming the file and what is wrong.
    bad = {
        "traversal.json": ('{"files": {"../etc/passwd": {"sha256": "' + "a" * 64 + '"}}}', "must be relative"),
        "absolute.json": ('[{"path": "/etc/passwd", "oid": "' + "a" * 40 + '"}]', "must be relative"),
        "badhex.json": ('{"files": {"x": {"sha256": "xyz"}}}', "64 hex digits"),
        "nohash.json": ('{"files": {"x": {"size": 3}}}', "gives no hash"),
        "notjson.json": ("{files", "not valid JSON"),
        "other.json": ('{"model_type": "bert"}', "neither a Hugging Face tree listing"),
        "unknownkey.json": ('{"files": {"x": {"sha265": "' + "a" * 64 + '"}}}', "unknown key"),
    }
    for name, (text, reason) in sorted(bad.items()):
        path = os.path.join(tmp, name)
        with open(path, "w") as fh:
            fh.write(text)
        p = run(["scan", "--manifest", path, repo])
        e = p.stderr.decode("utf-8", "replace")
        tap(p.returncode == 2 and name in e and reason in e and not p.stdout,
            f"a broken manifest ({name}) is refused with exit 2, naming the file: {reason}", e)
    conflict = os.path.join(tmp, "conflict.json")
    with open(conflict, "w") as fh:
        json.dump({"root": repo, "files": {"config.json": {"sha256": "b" * 64}}}, fh)
    p = run(["scan", "--manifest", out, "--manifest", conflict, repo])
    e = p.stderr.decode("utf-8", "replace")
    tap(p.returncode == 2 and "disagrees" in e and "conflict.json" in e and "modelgate-manifest.json" in e,
        "two manifests that disagree about a file are refused, naming both", e)
    p = run(["scan", "--root", repo, repo])
    tap(p.returncode == 2 and b"--root" in p.stderr, "--root without --manifest is a usage error", p.stderr.decode())
    p = run(["manifest", os.path.join(tmp, "missing")])
    tap(p.returncode == 2 and b"missing" in p.stderr, "modelgate manifest of a missing DIR: exit 2 naming it", p.stderr.decode())

    # The field report's "Type 1": a Git LFS pointer downloaded in place of the
    # weights, checked against the Hub's listing: the pointer and the mismatch.
    real = b"\x00" * 5000
    oid = hashlib.sha256(real).hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(real)}\n".encode()
    dl = os.path.join(tmp, "download")
    write(os.path.join(dl, "model.safetensors"), pointer)
    with open(os.path.join(tmp, "dl-tree.json"), "w") as fh:
        json.dump([{"type": "file", "oid": git_blob_id(pointer), "size": len(real), "path": "model.safetensors",
                    "lfs": {"oid": oid, "size": len(real), "pointerSize": len(pointer)}}], fh)
    st, rep, err = scan_json(["--manifest", os.path.join(tmp, "dl-tree.json"), "--root", dl, dl])
    f = rep and rep.get(os.path.join(dl, "model.safetensors"))
    tap(st == 1 and f and f["format"] == "lfs-pointer" and sorted(rules(f)) == ["HASH_MISMATCH", "LFS_POINTER"]
        and any(oid in x["message"] for x in f["findings"] if x["rule"] == "LFS_POINTER"),
        "an LFS pointer saved as model.safetensors: LFS_POINTER (with its oid) and HASH_MISMATCH against the listing",
        err if rep is None else f)

    # A Hugging Face cache tree: blobs named by hash, snapshots are symlinks.
    hub = os.path.join(tmp, "hub", "models--org--name")
    snap = os.path.join(hub, "snapshots", "0123abcd")
    weights = b"\x00" * 4096 + b"real weights"
    config = b'{"architectures": ["BertModel"]}\n'
    blobs = {hashlib.sha256(weights).hexdigest(): weights, git_blob_id(config): config}
    for name, data in blobs.items():
        write(os.path.join(hub, "blobs", name), data)
    os.makedirs(snap)
    os.symlink("../../blobs/" + hashlib.sha256(weights).hexdigest(), os.path.join(snap, "model.bin"))
    os.symlink("../../blobs/" + git_blob_id(config), os.path.join(snap, "config.json"))
    write(os.path.join(hub, "refs", "main"), b"0123abcd")
    st, rep, err = scan_json([snap])
    tap(st == 0 and rep and len(rep) == 2 and all(f["verdict"] == "allow" for f in rep.values())
        and rep[os.path.join(snap, "model.bin")]["sha256"] == hashlib.sha256(weights).hexdigest(),
        "Hugging Face cache: blobs that match their names (SHA-256 and git blob id) are allowed, hashed",
        err if rep is None else rep)
    with open(os.path.join(hub, "blobs", hashlib.sha256(weights).hexdigest()), "r+b") as fh:
        fh.write(b"\x01")
    with open(os.path.join(hub, "blobs", git_blob_id(config)), "r+b") as fh:
        fh.write(b"[")
    st, rep, err = scan_json([os.path.join(tmp, "hub")])
    denied = sorted(os.path.basename(p) for p, f in (rep or {}).items() if f["verdict"] == "deny" and rules(f) == ["HASH_MISMATCH"])
    tap(st == 1 and rep and len(denied) == 4 and all("blob name" in f["findings"][0]["message"] for f in rep.values()
                                                     if f["verdict"] == "deny"),
        "Hugging Face cache: a tampered blob is HASH_MISMATCH through its snapshot link and as a blob (4 paths)",
        err if rep is None else rep)


if __name__ == "__main__":
    sys.exit(main())
