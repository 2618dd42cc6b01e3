#!/usr/bin/python3
"""agent-check.py — TAP: the real modelgated on a tmpfs of generated fixtures, with
real fanotify, real journald and the real loaders. Every case bounds its waits: an
opener that hangs is a failure, never a stuck test. Needs root."""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

MODELGATE = os.environ["MODELGATE"]
MODELGATED = os.environ["MODELGATED"]
FIXTURES = os.environ["FIXTURES"]
PY = os.environ.get("PYTHON3", "/usr/bin/python3")

EVIL = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R."          # 25 bytes, os.system("true")
BENIGN_25 = b"\x80\x02X\x11\x00\x00\x00" + b"a" * 17 + b"."          # 25 bytes, a string

results = []


def tap(ok, name, diag=None):
    results.append(ok)
    print(("ok" if ok else "not ok") + f" {len(results)} - {name}")
    if diag and not ok:
        for line in str(diag).splitlines()[:20]:
            print("# " + line)
    sys.stdout.flush()


def run(cmd, timeout=30, **kw):
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, e.stdout or b"", (e.stderr or b"") + b"\nTIMEOUT")


def open_status(path, timeout=20):
    """Opens path from a separate process: 'ok', 'EPERM', 'hang' or another error."""
    p = run([PY, "-c", "import os,sys\ntry:\n os.close(os.open(sys.argv[1], os.O_RDONLY)); print('ok')\n"
                       "except OSError as e: print(__import__('errno').errorcode[e.errno])", path], timeout=timeout)
    if p.returncode == 124:
        return "hang"
    return p.stdout.decode().strip()


class Daemon:
    def __init__(self, root, args=()):
        self.log = os.path.join(root, f"modelgated-{time.monotonic_ns()}.log")
        self.f = open(self.log, "w")
        if "--state-dir" not in args and "--no-store" not in args:   # never the host's /var/lib/modelgate
            args = ["--state-dir", os.path.join(root, f"state-{time.monotonic_ns()}")] + list(args)
        self.p = subprocess.Popen([MODELGATED, "--worker-exe", MODELGATE] + list(args),
                                  stdout=self.f, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.p.poll() is not None:
                return False
            if "modelgated: ready" in open(self.log).read():
                return True
            time.sleep(0.05)
        return False

    def workers(self):
        p = run(["pgrep", "-P", str(self.p.pid)])
        return [int(x) for x in p.stdout.split()]

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.f.close()
        return self.p.returncode

    def output(self):
        return open(self.log).read()


def fdinfo_of(pid):
    """Everything /proc/PID/fdinfo says: the fanotify marks of a daemon."""
    text = ""
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text += open(f"/proc/{pid}/fdinfo/{fd}").read()
        except OSError:
            pass
    return text


def journal(match, since):
    p = run(["journalctl", "--no-pager", "-o", "json", "--since", since, "-t", "modelgated"] + match, timeout=30)
    out = []
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def wait_journal(match, since, pred, timeout=15):
    end = time.monotonic() + timeout
    recs = []
    while time.monotonic() < end:
        recs = journal(match, since)
        if pred(recs):
            return recs
        time.sleep(0.3)
    return recs


JOURNAL_SOCKET = "/run/systemd/journal/socket"


def journald_listening():
    """A socket file is not a journald: one left behind by a journald that has
    exited refuses connections. Only a connect() tells."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(JOURNAL_SOCKET)
        return True
    except OSError:
        return False
    finally:
        s.close()


def ensure_journald():
    """Start a journald of our own when none is listening, then prove the journal
    works end to end: a record written now must come back from journalctl.
    Returns (the Popen we started or None, None or why the journal does not work)."""
    started = None
    if not journald_listening():
        os.makedirs("/run/systemd/journal", exist_ok=True)
        started = subprocess.Popen(["/lib/systemd/systemd-journald"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(200):
            if journald_listening() or started.poll() is not None:
                break
            time.sleep(0.05)
        if not journald_listening():
            return started, f"/lib/systemd/systemd-journald did not start listening on {JOURNAL_SOCKET} (exit {started.poll()})"
    tag = f"mg-probe-{os.getpid()}-{time.monotonic_ns()}"
    p = run(["systemd-cat", "-t", tag, "echo", "probe"])
    if p.returncode != 0:
        return started, "systemd-cat could not write to the journal: " + p.stderr.decode("utf-8", "replace")
    for _ in range(100):
        p = run(["journalctl", "--no-pager", "-o", "cat", "-t", tag])
        if b"probe" in p.stdout:
            return started, None
        time.sleep(0.1)
    return started, "a record written with systemd-cat never came back from journalctl: " + p.stderr.decode("utf-8", "replace")


def main():
    tmp = tempfile.mkdtemp(prefix="mg-agent-")
    mnt = os.path.join(tmp, "mnt")
    os.makedirs(mnt)
    started_journald = None
    daemons = []
    try:
        if run(["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", mnt]).returncode != 0:
            print("1..0 # SKIP cannot mount a tmpfs (needs root)")
            return 0
        started_journald, why = ensure_journald()
        tap(why is None, "journald is running and returns a record written to it", why)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 2))
        w = os.path.join(mnt, "w")
        for part in ("malicious", "benign", "support"):
            shutil.copytree(os.path.join(FIXTURES, part), os.path.join(w, part), symlinks=True)
        with open(os.path.join(w, "evil.pkl"), "wb") as f:
            f.write(EVIL)
        policy = os.path.join(tmp, "policy.json")
        with open(policy, "w") as f:
            f.write("{}")

        # The truth: what modelgate scan says of each file.
        p = run([MODELGATE, "scan", "--format", "json", w], timeout=300)
        report = json.loads(p.stdout)
        verdict = {f["path"]: f["verdict"] for f in report["files"]}
        files = sorted(verdict)

        d = Daemon(tmp, ["--watch", w, "--policy", policy, "--timeout", "4", "--workers", "2"])
        daemons.append(d)
        tap(d.wait_ready(), "modelgated starts, marks the filesystem and reports ready", d.output())

        # Every file: EPERM exactly when modelgate scan denies it. One opener process.
        script = ("import os,sys,json,errno\nr={}\nfor p in sys.argv[1:]:\n try:\n  os.close(os.open(p,os.O_RDONLY)); r[p]='ok'\n"
                  " except OSError as e: r[p]=errno.errorcode[e.errno]\nprint(json.dumps(r))")
        p = run([PY, "-c", script] + files, timeout=300)
        got = json.loads(p.stdout) if p.returncode == 0 else {}
        for f in files:
            want = "EPERM" if verdict[f] == "deny" else "ok"
            tap(got.get(f) == want, f"open() of {os.path.relpath(f, w)}: {want}", f"got {got.get(f)}")

        # Real loaders refuse: PermissionError, and the payload marker never appears.
        prove = [l.rstrip("\n").split("\t") for l in open(os.path.join(FIXTURES, "PROVE")) if l.strip()]
        by_loader = {}
        for row in prove:
            if len(row) >= 2 and row[1] in ("torch", "numpy", "joblib", "pickle") and (len(row) < 3 or row[2] in ("", "-")):
                by_loader.setdefault(row[1], []).append(os.path.join(w, row[0]))
        loader_code = {
            "torch": "import torch\ndef load(p): return torch.load(p)",
            "numpy": "import numpy\ndef load(p):\n r=numpy.load(p, allow_pickle=True)\n if hasattr(r,'files'): [r[k] for k in r.files]\n return r",
            "joblib": "import joblib\ndef load(p): return joblib.load(p)",
            "pickle": "import pickle\ndef load(p):\n with open(p,'rb') as f:\n  while True:\n   try: pickle.load(f)\n   except EOFError: return",
        }
        for loader, paths in sorted(by_loader.items()):
            code = loader_code[loader] + ("\nimport sys\nfor p in sys.argv[1:]:\n try:\n  load(p); print('LOADED', p)\n"
                                          " except PermissionError: print('EPERM', p)\n except BaseException as e: print('OTHER', type(e).__name__, p)")
            p = run([PY, "-u", "-c", code] + paths, timeout=300)
            out = p.stdout.decode("utf-8", "replace")
            eperm = out.count("EPERM ")
            tap("MODELGATE-RAN" not in out and eperm == len(paths),
                f"{loader} loader: all {len(paths)} malicious fixtures raise PermissionError, no payload ran",
                out[-1500:] + p.stderr.decode("utf-8", "replace")[-500:])
        benign_pt = [f for f in files if "/benign/" in f and f.endswith(".pt") and verdict[f] == "allow"]
        benign_npy = [f for f in files if "/benign/" in f and (f.endswith(".npy") or f.endswith(".npz")) and verdict[f] == "allow"]
        p = run([PY, "-c", "import sys,torch,numpy\nfor p in sys.argv[1:]:\n if p.endswith('.pt'): torch.load(p)\n"
                 " else:\n  r=numpy.load(p, allow_pickle=True)\n  if hasattr(r,'files'): [r[k] for k in r.files]\nprint('all loaded')"]
                + benign_pt + benign_npy, timeout=300)
        tap(b"all loaded" in p.stdout, f"clean models load: {len(benign_pt)} torch files, {len(benign_npy)} numpy files",
            p.stderr.decode("utf-8", "replace")[-1500:])

        # The journal holds the denials with the DESIGN.md fields.
        evil = os.path.join(w, "evil.pkl")
        recs = wait_journal(["MODELGATE_VERDICT=deny", "MODELGATE_PATH=" + evil], since,
                            lambda rs: any(r.get("MODELGATE_SHA256") for r in rs))
        need = ["MESSAGE_ID", "PRIORITY", "MODELGATE_VERDICT", "MODELGATE_PATH", "MODELGATE_RULE", "MODELGATE_SEVERITY",
                "MODELGATE_SHA256", "MODELGATE_PID", "MODELGATE_EXE", "MODELGATE_UID"]
        good = [r for r in recs if all(r.get(k) for k in need) and re.fullmatch(r"[0-9a-f]{64}", r["MODELGATE_SHA256"])
                and r["MODELGATE_RULE"] == "UNSAFE_IMPORT" and r["MODELGATE_SEVERITY"] == "critical"]
        tap(bool(good), "journalctl -t modelgated MODELGATE_VERDICT=deny has the denial with every field", recs[-3:])
        denied = [f for f in files if verdict[f] == "deny"]
        recs = wait_journal(["MODELGATE_VERDICT=deny"], since,
                            lambda rs: {r.get("MODELGATE_PATH") for r in rs} >= set(denied))
        missing = set(denied) - {r.get("MODELGATE_PATH") for r in recs}
        tap(not missing, f"every one of the {len(denied)} denied files has a journal record", sorted(missing)[:10])

        # A subdirectory made after start is covered.
        newdir = os.path.join(w, "made-later", "deeper")
        os.makedirs(newdir)
        with open(os.path.join(newdir, "model.bin"), "wb") as f:
            f.write(EVIL)
        tap(open_status(os.path.join(newdir, "model.bin")) == "EPERM", "a file in a subdirectory made after start is refused")

        # Other mount namespaces and bind mounts see the same verdicts.
        other = os.path.join(tmp, "bind")
        os.makedirs(other)
        p = run(["unshare", "-m", "sh", "-c", f"mount --bind '{w}' '{other}' && cat '{other}/evil.pkl' >/dev/null; echo $?; "
                 f"cat '{evil}' > /dev/null; echo $?"], timeout=30)
        tap(p.stdout.split() == [b"1", b"1"] and b"Operation not permitted" in p.stderr,
            "opens from another mount namespace, directly and through a bind mount, are refused", p.stdout + p.stderr)

        # Opens outside the roots: after the first, the directory carries an ignore
        # mark; files or directories moved from there into a root are still checked.
        out1 = os.path.join(mnt, "outside1")
        out2 = os.path.join(mnt, "outside2")
        for dd in (out1, out2):
            os.makedirs(dd)
            with open(os.path.join(dd, "e.pkl"), "wb") as fh:
                fh.write(EVIL)
        first = [open_status(os.path.join(dd, "e.pkl")) for dd in (out1, out2)]
        fdinfo = fdinfo_of(d.p.pid)
        marked = all(re.search(r"ino:%x .*mflags:6[0-9a-f]0 .*ignored_mask:8010000" % os.stat(dd).st_ino, fdinfo)
                     for dd in (out1, out2))
        tap(first == ["ok", "ok"] and marked,
            "opens outside the roots are allowed and their directory gets an ignore mark (later opens cost nothing)",
            f"first={first} marked={marked}")
        os.rename(os.path.join(out1, "e.pkl"), os.path.join(w, "moved-in.pkl"))
        tap(open_status(os.path.join(w, "moved-in.pkl")) == "EPERM",
            "a file moved from a marked outside directory into a root is still refused")
        os.rename(out2, os.path.join(w, "dir-moved-in"))
        time.sleep(0.3)   # the flush follows the move's notification: a documented window
        tap(open_status(os.path.join(w, "dir-moved-in", "e.pkl")) == "EPERM",
            "a marked directory moved into a root loses its mark: its files are refused")

        # A same-size rewrite that restores mtime is rescanned (ctime is in the cache key).
        f = os.path.join(w, "rewrite.pkl")
        with open(f, "wb") as fh:
            fh.write(BENIGN_25)
        first = open_status(f)
        st = os.stat(f)
        with open(f, "r+b") as fh:
            fh.write(EVIL)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        tap(first == "ok" and os.stat(f).st_mtime_ns == st.st_mtime_ns and open_status(f) == "EPERM",
            "a same-size rewrite with mtime restored is rescanned and refused")

        # A file mapped writable: its verdict is not cached (mapped writes can leave
        # ctime alone), so content changed through the mapping is scanned again.
        import mmap
        f = os.path.join(w, "mapped.pkl")
        with open(f, "wb") as fh:
            fh.write(BENIGN_25)
        fd = os.open(f, os.O_RDWR)
        mm = mmap.mmap(fd, len(BENIGN_25))
        first = open_status(f)
        mm[:] = EVIL
        second = open_status(f)
        mm.close()
        os.close(fd)
        tap(first == "ok" and second == "EPERM",
            "content changed through a writable mapping after an allow is scanned again and refused",
            f"first={first} second={second}")

        # Hugging Face cache blobs are verified against their names.
        import hashlib
        blobs = os.path.join(w, "hub", "models--org--name", "blobs")
        os.makedirs(blobs)
        good = os.path.join(blobs, hashlib.sha256(BENIGN_25).hexdigest())
        bad = os.path.join(blobs, hashlib.sha256(b"something else").hexdigest())
        for path in (good, bad):   # as huggingface_hub does: write "<blob>.incomplete", then rename
            with open(path + ".incomplete", "wb") as fh:
                fh.write(BENIGN_25)
            os.rename(path + ".incomplete", path)
        st_good, st_bad = open_status(good), open_status(bad)
        recs = wait_journal(["MODELGATE_VERDICT=deny", "MODELGATE_PATH=" + bad], since,
                            lambda rs: any(r.get("MODELGATE_RULE") == "HASH_MISMATCH" for r in rs))
        tap(st_good == "ok" and st_bad == "EPERM" and any(r.get("MODELGATE_RULE") == "HASH_MISMATCH" for r in recs),
            "a Hugging Face cache blob whose content does not match its name is refused (HASH_MISMATCH)",
            f"good={st_good} bad={st_bad}")

        bad2 = os.path.join(blobs, hashlib.sha256(b"yet another thing").hexdigest())
        with open(bad2 + ".incomplete", "wb") as fh:
            fh.write(BENIGN_25)
        os.rename(bad2 + ".incomplete", bad2)
        alias = os.path.join(w, "alias.pkl")
        os.link(bad2, alias)
        st_alias, st_blob = open_status(alias), open_status(bad2)
        tap(st_alias == "ok" and st_blob == "EPERM",
            "a verdict cached through a hard link does not skip the blob's hash check", f"alias={st_alias} blob={st_blob}")

        # Reload: a broken policy keeps the old one; a good one applies at once.
        with open(policy, "w") as fh:
            fh.write("{ this is not json")
        d.p.send_signal(signal.SIGHUP)
        recs = wait_journal(["MESSAGE_ID=014c2b32f8c94992a7e920e1ae86c7b1"], since, lambda rs: len(rs) > 0)
        tap(bool(recs) and open_status(evil) == "EPERM" and d.p.poll() is None,
            "SIGHUP with a broken policy logs the refusal and keeps enforcing the old policy")
        with open(policy, "w") as fh:
            fh.write('{"allow_globals": ["os:system"]}')
        d.p.send_signal(signal.SIGHUP)
        recs = wait_journal(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], since, lambda rs: len(rs) > 0)
        tap(bool(recs) and open_status(evil) == "ok", "SIGHUP with a good policy applies it (cached verdicts dropped)")
        with open(policy, "w") as fh:
            fh.write("{}")
        d.p.send_signal(signal.SIGHUP)
        wait_journal(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], since, lambda rs: len(rs) > 1)

        # A git blob id names a small (non-LFS) file in the Hugging Face cache.
        cfg = b'{"architectures": ["BertModel"]}\n'
        gid = hashlib.sha1(b"blob %d\0" % len(cfg) + cfg).hexdigest()
        gid_bad = hashlib.sha1(b"blob 3\0abc").hexdigest()
        for name in (gid, gid_bad):
            with open(os.path.join(blobs, name), "wb") as fh:
                fh.write(cfg)
        tap(open_status(os.path.join(blobs, gid)) == "ok" and open_status(os.path.join(blobs, gid_bad)) == "EPERM",
            "a cache blob named by its git blob id (SHA-1) is verified too: match allowed, mismatch refused")

        # The policy's manifests are loaded with it (reload): a pinned file that
        # changed is refused, by path, with its expected and actual hash logged.
        pinned = os.path.join(w, "pinned")
        os.makedirs(os.path.join(pinned, "a"))
        os.makedirs(os.path.join(pinned, "b"))
        for sub in ("a", "b"):
            with open(os.path.join(pinned, sub, "model.bin"), "wb") as fh:
                fh.write(BENIGN_25)
        manifest = os.path.join(tmp, "pinned-manifest.json")
        with open(manifest, "w") as fh:
            json.dump({"root": pinned, "files": {f"{sub}/model.bin": {"sha256": hashlib.sha256(BENIGN_25).hexdigest(),
                                                                      "size": 25} for sub in ("a", "b")}}, fh)
        with open(os.path.join(pinned, "b", "model.bin"), "r+b") as fh:
            fh.write(b"\x80\x02X\x11\x00\x00\x00b")   # same size, still a benign pickle
        with open(policy, "w") as fh:
            json.dump({"manifests": [manifest]}, fh)
        n_reloads = len(journal(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], since))
        d.p.send_signal(signal.SIGHUP)
        wait_journal(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], since, lambda rs: len(rs) > n_reloads)
        bad = os.path.join(pinned, "b", "model.bin")
        st_a, st_b = open_status(os.path.join(pinned, "a", "model.bin")), open_status(bad)
        recs = wait_journal(["MODELGATE_VERDICT=deny", "MODELGATE_PATH=" + bad], since,
                            lambda rs: any(r.get("MODELGATE_RULE") == "HASH_MISMATCH" for r in rs))
        msg = " ".join(r.get("MESSAGE", "") for r in recs)
        tap(st_a == "ok" and st_b == "EPERM" and hashlib.sha256(BENIGN_25).hexdigest() in msg,
            "policy manifests: a pinned file that changed is refused (HASH_MISMATCH, expected hash logged), "
            "its namesake that did not is allowed", f"a={st_a} b={st_b} {msg[:300]}")
        with open(manifest, "w") as fh:
            fh.write('{"files": {"../escape": {"sha256": "' + "0" * 64 + '"}}}')
        d.p.send_signal(signal.SIGHUP)
        recs = wait_journal(["MESSAGE_ID=014c2b32f8c94992a7e920e1ae86c7b1"], since,
                            lambda rs: any("pinned-manifest.json" in r.get("MESSAGE", "") for r in rs))
        tap(bool(recs) and open_status(bad) == "EPERM",
            "SIGHUP with a broken manifest is refused naming it, and the old manifests stay in force",
            [r.get("MESSAGE") for r in recs][-2:])
        # require_manifest: a file whose path is longer than a page (the agent
        # cannot read its name, so no manifest can list it) is refused too.
        with open(policy, "w") as fh:
            json.dump({"require_manifest": True}, fh)
        n_reloads = len(journal(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], since))
        d.p.send_signal(signal.SIGHUP)
        wait_journal(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], since, lambda rs: len(rs) > n_reloads)
        deep_parts = ["d" * 200] * 22
        fd = os.open(w, os.O_RDONLY | os.O_DIRECTORY)
        for part in deep_parts:
            os.mkdir(part, dir_fd=fd)
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        wfd = os.open("model.bin", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(wfd, BENIGN_25)
        os.close(wfd)
        os.close(fd)
        p = run([PY, "-c", "import os,sys\nfor part in sys.argv[1:]: os.chdir(part)\ntry:\n"
                           " os.close(os.open('model.bin', os.O_RDONLY)); print('ok')\n"
                           "except OSError as e: print(__import__('errno').errorcode[e.errno])"] + [w] + deep_parts)
        st_deep = p.stdout.decode().strip()
        with open(os.path.join(w, "unlisted.bin"), "wb") as fh:
            fh.write(BENIGN_25)
        st_short = open_status(os.path.join(w, "unlisted.bin"))
        tap(st_deep == "EPERM" and st_short == "EPERM",
            "require_manifest: an unlisted file is refused, also under a path longer than a page",
            f"deep={st_deep} short={st_short}")
        # A manifest entry that is a symbolic link: the kernel names the file by
        # its target, and the entry must still apply there.
        store = os.path.join(w, "store")
        links = os.path.join(w, "links")
        os.makedirs(store)
        os.makedirs(links)
        for name, data in (("good", BENIGN_25), ("bad", b"\x80\x02X\x11\x00\x00\x00" + b"c" * 17 + b".")):
            with open(os.path.join(store, name + ".bin"), "wb") as fh:   # created empty: allowed
                fh.write(data)
            os.symlink(os.path.join(store, name + ".bin"), os.path.join(links, name + ".bin"))
        with open(manifest, "w") as fh:
            json.dump({"root": links, "files": {f"{n}.bin": {"sha256": hashlib.sha256(BENIGN_25).hexdigest(), "size": 25}
                                                for n in ("good", "bad")}}, fh)
        with open(policy, "w") as fh:
            json.dump({"manifests": [manifest]}, fh)
        n_reloads = len(journal(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], since))
        d.p.send_signal(signal.SIGHUP)
        wait_journal(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], since, lambda rs: len(rs) > n_reloads)
        st_good, st_bad = open_status(os.path.join(links, "good.bin")), open_status(os.path.join(links, "bad.bin"))
        tap(st_good == "ok" and st_bad == "EPERM",
            "a manifest entry that is a symlink applies to its target (the name the kernel reports)",
            f"good={st_good} bad={st_bad}")

        with open(policy, "w") as fh:
            fh.write("{}")
        n_reloads = len(journal(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], since))
        d.p.send_signal(signal.SIGHUP)
        wait_journal(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], since, lambda rs: len(rs) > n_reloads)

        # A worker killed mid-scan: the opener gets on_error (deny), nobody hangs.
        f = os.path.join(w, "killed.pkl")
        with open(f, "wb") as fh:
            fh.write(EVIL)
        ws = d.workers()
        for pid in ws:
            os.kill(pid, signal.SIGSTOP)
        opener = subprocess.Popen([PY, "-c", "import os,sys\ntry: os.open(sys.argv[1], os.O_RDONLY); print('ok')\n"
                                   "except OSError as e: print(e.errno)", f], stdout=subprocess.PIPE)
        time.sleep(0.5)
        for pid in ws:
            os.kill(pid, signal.SIGKILL)
        try:
            out, _ = opener.communicate(timeout=15)
            ok = out.strip() == b"1"
        except subprocess.TimeoutExpired:
            opener.kill()
            ok = False
        tap(ok, "a worker killed mid-scan: the waiting open gets on_error (EPERM), no hang")
        time.sleep(0.5)
        tap(open_status(os.path.join(w, "benign", "mlp-fp32.pt")) in ("ok",) and open_status(f) == "EPERM",
            "after the crash, replaced workers give correct verdicts")

        # A worker stopped with SIGSTOP: the deadline (4 s) kills it; the open is answered.
        f = os.path.join(w, "stopped.pkl")
        with open(f, "wb") as fh:
            fh.write(BENIGN_25)
        for pid in d.workers():
            os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        st = open_status(f, timeout=20)
        took = time.monotonic() - t0
        tap(st == "EPERM" and took < 10, f"a stopped worker misses its deadline: answered on_error in {took:.1f} s", st)

        # SIGTERM with opens in flight: all answered, exit status 0.
        inflight = [os.path.join(w, f"inflight{i}.pkl") for i in range(4)]
        for g in inflight:   # written before the workers stop: writers' opens are checked too
            with open(g, "wb") as fh:
                fh.write(BENIGN_25)
        time.sleep(0.5)
        for pid in d.workers():
            os.kill(pid, signal.SIGSTOP)
        openers = []
        for g in inflight:
            openers.append(subprocess.Popen([PY, "-c", "import os,sys\ntry: os.open(sys.argv[1], os.O_RDONLY); print('ok')\n"
                                             "except OSError as e: print(e.errno)", g], stdout=subprocess.PIPE))
        time.sleep(0.5)
        rc = d.stop(signal.SIGTERM)
        answered = 0
        for o in openers:
            try:
                o.communicate(timeout=15)
                answered += 1
            except subprocess.TimeoutExpired:
                o.kill()
        tap(rc == 0 and answered == len(openers), f"SIGTERM with {len(openers)} opens in flight: all answered, exit 0",
            f"rc={rc} answered={answered}")

        # --audit: would-be denials are logged and the open is allowed.
        with open(policy, "w") as fh:
            fh.write("{}")
        d3 = Daemon(tmp, ["--watch", w, "--policy", policy, "--workers", "2", "--audit"])
        daemons.append(d3)
        f = os.path.join(w, "audited.pkl")
        with open(f, "wb") as fh:
            fh.write(EVIL)
        ready = d3.wait_ready()
        st_a = open_status(f)
        recs = wait_journal(["MESSAGE_ID=3c69e9968d154135845257d87fab3266", "MODELGATE_PATH=" + f], since,
                            lambda rs: len(rs) > 0)
        tap(ready and st_a == "ok" and any(r.get("MODELGATE_MODE") == "audit" and r.get("MODELGATE_RULE") == "UNSAFE_IMPORT"
                                          for r in recs),
            "--audit: a would-be denial is allowed and logged with MODELGATE_MODE=audit", f"open={st_a} recs={len(recs)}")
        d3.stop()

        # Startup refuses, with a clear message, what it cannot do safely.
        refusals = [
            (["--watch", os.path.join(tmp, "missing")], "No such file or directory"),
            (["--watch", w, "--policy", os.path.join(tmp, "bad-policy.json")], "invalid policy"),
            (["--watch", w, "--worker-exe", "/bin/false"], "sandbox cannot be applied"),
        ]
        with open(os.path.join(tmp, "bad-policy.json"), "w") as fh:
            fh.write('{"fail_severity": "severe"}')
        for args, words in refusals:
            p = run([MODELGATED, "--worker-exe", MODELGATE] + args, timeout=30)
            msg = p.stderr.decode("utf-8", "replace")
            tap(p.returncode == 1 and words in msg and "ready" not in msg,
                f"startup refuses ({words}) with exit 1 and says why", msg)

        # Opt-in ignore marks: placed on an allowed file, dropped by a write.
        with open(policy, "w") as fh:
            fh.write('{"ignore_marks": true}')
        d2 = Daemon(tmp, ["--watch", w, "--policy", policy, "--workers", "2"])
        daemons.append(d2)
        f = os.path.join(w, "marked.pkl")
        with open(f, "wb") as fh:
            fh.write(BENIGN_25)
        ready = d2.wait_ready()
        first = open_status(f)
        ino = os.stat(f).st_ino
        fdinfo = fdinfo_of(d2.p.pid)
        marked = re.search(r"ino:%x .*ignored_mask:10000" % ino, fdinfo) is not None
        with open(f, "r+b") as fh:   # a write drops the mark: the next open is scanned again
            fh.write(EVIL)
        tap(ready and first == "ok" and marked and open_status(f) == "EPERM",
            "ignore_marks: an allowed file gets a kernel ignore mark; a write drops it and the next open is refused",
            f"ready={ready} first={first} marked={marked}")
        d2.stop()
    finally:
        for d in daemons:
            if d.p.poll() is None:
                d.stop(signal.SIGKILL)
        run(["umount", "-l", mnt])
        if started_journald:
            started_journald.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{len(results)}")   # the plan at the end: the number of loaders varies
    return 0 if all(results) and results else 1


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("1..0 # SKIP modelgated needs root (fanotify permission events)")
        sys.exit(0)
    sys.exit(main())
