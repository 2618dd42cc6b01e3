#!/usr/bin/python3
"""agent-store.py — TAP: the verdict store and attestations with the real
modelgated, real fanotify and journald. Restarts with a warm store answer
without a scan; a policy change rescans; a damaged store never turns into a
wrong verdict; a signed statement is trusted only when the signature, key,
policy hash and content all check out. Needs root and the openssl CLI."""
import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("agent_check", os.path.join(HERE, "agent-check.py"))
ac = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ac)
tap, run, open_status = ac.tap, ac.run, ac.open_status
MODELGATE = ac.MODELGATE

EVIL = ac.EVIL                                                          # 25 bytes, os.system("true")
BENIGN = ac.BENIGN_25                                                   # 25 bytes, a string
ORDERED = b"\x80\x02ccollections\nOrderedDict\n)R."                    # allowed by default, denied by policy B
PAYLOAD_TYPE = "application/vnd.modelgate.verdicts+json"
STORE = "verdicts.db"
RECORD = 128


def evil(tag):
    """A distinct malicious pickle per case (4-byte argument)."""
    assert len(tag) == 4
    return b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00" + tag.encode() + b"\x85R."


LAST_WRITE = [0.0]


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    LAST_WRITE[0] = time.time()


def settle():
    """modelgated persists a verdict only once its file's ctime is 2 s old."""
    time.sleep(max(0.0, LAST_WRITE[0] + 2.2 - time.time()))


JOURNALDS = []


class Agent:
    """One modelgated run; its journal records are told apart by _PID. The
    journald may be shared with other test runs on the host, one of which may
    stop the journald it started: make sure one listens before each run."""
    def __init__(self, tmp, args, settled=True):
        if not ac.journald_listening():
            started, _ = ac.ensure_journald()
            if started:
                JOURNALDS.append(started)
        if settled:
            settle()
        self.d = ac.Daemon(tmp, args)
        self.ready = self.d.wait_ready()
        self.counts = {}

    def records(self, match=(), pred=lambda rs: True, timeout=30):
        return ac.wait_journal(["_PID=%d" % self.d.p.pid] + list(match), "-1h", pred, timeout)

    def source_of(self, path, timeout=30):
        recs = self.records(["MODELGATE_PATH=" + path], lambda rs: any(r.get("MODELGATE_SOURCE") for r in rs), timeout)
        return sorted({r.get("MODELGATE_SOURCE") for r in recs if r.get("MODELGATE_SOURCE")})

    def stop(self):
        """Stops it; returns its scan count, and keeps its counters (the daemon's
        last line: a record of what it did that needs no journal)."""
        self.d.stop()
        m = re.search(r"stopped \((\d+) events, (\d+) scans, (\d+) denied, (\d+) store hits, (\d+) attested\)",
                      self.d.output())
        if not m:
            return -1
        self.counts = dict(zip(("events", "scans", "denied", "store", "attested"), map(int, m.groups())))
        return self.counts["scans"]


def openssl(*args, data=None):
    p = subprocess.run(["openssl"] + list(args), input=data, capture_output=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode())
    return p.stdout


def envelope(key_pem, policy_sha, files, flip_after_sign=False):
    """A DSSE envelope built apart from modelgate: payload JSON, PAE, and an
    Ed25519 signature by the openssl CLI."""
    payload = json.dumps({"version": 1, "tool": "modelgate", "tool_version": "test", "policy_sha256": policy_sha,
                          "issued": "2026-01-01T00:00:00Z",
                          "files": [{"sha256": hashlib.sha256(c).hexdigest(), "size": len(c), "verdict": v,
                                     "rules": []} for c, v in files]}).encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)
    tmp = tempfile.NamedTemporaryFile(dir="/var/tmp", delete=False)
    tmp.write(pae)
    tmp.close()
    sig = openssl("pkeyutl", "-sign", "-inkey", key_pem, "-rawin", "-in", tmp.name)
    os.unlink(tmp.name)
    der = openssl("pkey", "-in", key_pem, "-pubout", "-outform", "DER")
    if flip_after_sign:
        payload = bytearray(payload)
        payload[payload.index(b'"tool_version": "') + 17] ^= 0x01   # one byte the verdicts do not depend on
        payload = bytes(payload)
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": hashlib.sha256(der).hexdigest(), "sig": base64.b64encode(sig).decode()}]}


def policy_sha(policy):
    empty = policy + ".empty"
    write(empty, b"")
    p = run([MODELGATE, "scan", "--format", "json", "--policy", policy, empty])
    return json.loads(p.stdout)["policy"]["sha256"]


def store_cases(tmp, w):
    state = os.path.join(tmp, "state")
    pol = os.path.join(tmp, "policy.json")
    write(pol, b"{}")
    good, bad, ordered, rewrite = (os.path.join(w, n) for n in ("good.pkl", "bad.pkl", "ordered.pkl", "rewrite.pkl"))
    write(good, BENIGN)
    write(bad, EVIL)
    write(ordered, ORDERED)
    write(rewrite, BENIGN)
    files = (good, bad, ordered, rewrite)
    args = ["--watch", w, "--policy", pol, "--state-dir", state, "--workers", "2", "--timeout", "5"]

    a = Agent(tmp, args)
    got = [open_status(f) for f in files]
    src = [a.source_of(f) for f in files]
    scans = a.stop()
    if not os.path.exists(os.path.join(state, STORE)):
        tap(False, "modelgated made its store", a.d.output()[-1500:])
        return
    st = os.stat(os.path.join(state, STORE))
    tap(a.ready and got == ["ok", "EPERM", "ok", "ok"] and src == [["scan"]] * 4 and scans == 4,
        "cold store: every file is scanned (MODELGATE_SOURCE=scan) and its verdict recorded",
        f"ready={a.ready} got={got} src={src} scans={scans}")
    # A header, a record per verdict, and one more for the denial once its hash is known.
    tap(st.st_mode & 0o777 == 0o600 and os.stat(state).st_mode & 0o777 == 0o700 and st.st_size == 6 * RECORD,
        "the store is root-only (0600 in a 0700 directory): a header and 128-byte records",
        f"mode={oct(st.st_mode)} size={st.st_size}")

    # Rewritten while the agent is down, same size, mtime put back: ctime moved.
    mt = os.stat(rewrite)
    write(rewrite, evil("rwr1"))
    os.utime(rewrite, ns=(mt.st_atime_ns, mt.st_mtime_ns))
    a = Agent(tmp, args)
    got = [open_status(f) for f in files]
    src = [a.source_of(f) for f in files]
    scans = a.stop()
    tap(a.ready and got[:3] == ["ok", "EPERM", "ok"] and src[:3] == [["store"]] * 3 and a.counts.get("store") == 3,
        "warm store after a restart: known files are answered from the store (MODELGATE_SOURCE=store), no scan",
        f"got={got} src={src} counts={a.counts}")
    tap(got[3] == "EPERM" and src[3] == ["scan"] and scans == 1,
        "a file rewritten while the agent was down (same size, mtime restored) is scanned again and refused",
        f"got={got[3]} src={src[3]} scans={scans}")

    # Policy B denies OrderedDict: the store's A entries must not answer.
    write(pol, b'{"deny_globals": ["collections:OrderedDict"]}')
    a = Agent(tmp, args)
    got_b = open_status(ordered)
    src_b = a.source_of(ordered)
    scans_b = a.stop()
    tap(a.ready and got_b == "EPERM" and src_b == ["scan"] and scans_b == 1,
        "after a policy change a file allowed under policy A is rescanned and refused under policy B",
        f"got={got_b} src={src_b} scans={scans_b}")
    write(pol, b"{}")
    a = Agent(tmp, args)
    got_a = [open_status(ordered), open_status(good)]
    src_a = [a.source_of(ordered), a.source_of(good)]
    scans_a = a.stop()
    tap(a.ready and got_a == ["ok", "ok"] and src_a == [["store"], ["store"]] and scans_a == 0
        and a.counts.get("store") == 2,
        "policy A restored: its entries still hit (B's records are ignored, not harmful)",
        f"got={got_a} src={src_a} counts={a.counts}")

    # SIGHUP to policy B and back: the index follows the policy hash.
    a = Agent(tmp, args)
    write(pol, b'{"deny_globals": ["collections:OrderedDict"]}')
    a.d.p.send_signal(1)
    a.records(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], lambda rs: len(rs) > 0)
    st_b = open_status(ordered)
    write(pol, b"{}")
    a.d.p.send_signal(1)
    a.records(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], lambda rs: len(rs) > 1)
    st_a = open_status(ordered)
    recs = a.records(["MODELGATE_PATH=" + ordered], lambda rs: len(rs) >= 2)
    a.stop()
    # Both policies have an entry for the file by now (the runs above): each
    # answers for its own policy, never the other's.
    tap(st_b == "EPERM" and st_a == "ok" and [r.get("MODELGATE_SOURCE") for r in recs][-2:] == ["store", "store"],
        "SIGHUP: the store switches to the new policy's entries (B refuses), and back (A allows), with no scan",
        f"B={st_b} A={st_a} sources={[r.get('MODELGATE_SOURCE') for r in recs]}")

    # Content-keyed: a new inode whose name expects a hash the store knows is
    # hashed, not scanned, and gets the stored verdict of that content.
    blobs = [os.path.join(w, "hub", m, "blobs") for m in ("models--a--x", "models--b--x")]
    named = {}
    for content in (BENIGN, evil("blb1")):
        h = hashlib.sha256(content).hexdigest()
        named[content] = [os.path.join(b, h) for b in blobs]
    for b in blobs:
        os.makedirs(b)
    for content, (first, _) in named.items():
        write(first, content)
    a = Agent(tmp, args)
    first_st = [open_status(named[c][0]) for c in named]
    first_src = [a.source_of(named[c][0]) for c in named]
    a.stop()
    for content, (_, second) in named.items():   # the same content lands in another model's cache
        write(second, content)
    a = Agent(tmp, args)
    second_st = [open_status(named[c][1]) for c in named]
    second_src = [a.source_of(named[c][1]) for c in named]
    scans_c = a.stop()
    tap(first_st == ["ok", "EPERM"] and first_src == [["scan"], ["scan"]] and second_st == ["ok", "EPERM"]
        and second_src == [["store"], ["store"]] and scans_c == 0 and a.counts.get("store") == 2,
        "a new file whose Hugging Face blob name is a hash the store knows is only hashed: the stored verdict of "
        "that content answers (allow and deny)",
        f"first={first_st}/{first_src} second={second_st}/{second_src} scans={scans_c}")

    # The same through a manifest that also pins the size: the hash-first round
    # must carry the size, or the manifest check would refuse a matching file.
    mdir = os.path.join(w, "pinned")
    os.makedirs(mdir)
    manifest = os.path.join(tmp, "manifest.json")
    with open(manifest, "w") as f:
        json.dump({"root": mdir, "files": {n: {"sha256": hashlib.sha256(BENIGN).hexdigest(), "size": len(BENIGN)}
                                           for n in ("one.bin", "two.bin", "bad.bin")}}, f)
    mpol = os.path.join(tmp, "manifest-policy.json")
    with open(mpol, "w") as f:
        json.dump({"manifests": [manifest]}, f)
    margs = ["--watch", w, "--policy", mpol, "--state-dir", os.path.join(tmp, "state-m"), "--workers", "2"]
    write(os.path.join(mdir, "one.bin"), BENIGN)
    a = Agent(tmp, margs)
    st1 = open_status(os.path.join(mdir, "one.bin"))
    a.stop()
    write(os.path.join(mdir, "two.bin"), BENIGN)
    write(os.path.join(mdir, "bad.bin"), BENIGN[:-2] + b"x.")
    a = Agent(tmp, margs)
    st2, st3 = open_status(os.path.join(mdir, "two.bin")), open_status(os.path.join(mdir, "bad.bin"))
    src2, src3 = a.source_of(os.path.join(mdir, "two.bin")), a.source_of(os.path.join(mdir, "bad.bin"))
    a.stop()
    tap(st1 == "ok" and st2 == "ok" and src2 == ["store"] and st3 == "EPERM" and src3 == ["scan"]
        and a.counts.get("store") == 1 and a.counts.get("scans") == 1,
        "a new file a manifest pins (hash and size) is answered from the store's verdict of that content; "
        "one that differs is scanned and refused",
        f"one={st1} two={st2}/{src2} bad={st3}/{src3}")

    # Damage: every case starts from the good store, and the malicious file must
    # stay refused whatever the bytes say.
    pristine = open(os.path.join(state, STORE), "rb").read()
    ino = os.stat(bad).st_ino
    recs = [i for i in range(RECORD, len(pristine), RECORD)
            if int.from_bytes(pristine[i + 56:i + 64], "little") == ino]
    bad_at = recs[-1] if recs else None

    def flip_deny(b):
        b = bytearray(b)
        b[bad_at + 6] ^= 1                          # the record's verdict byte: deny -> allow
        return bytes(b)

    damage = [
        ("the malicious file's record with its verdict byte flipped to allow", flip_deny),
        ("the last record cut in the middle", lambda b: b[:-RECORD // 2 - 3]),
        ("random garbage appended", lambda b: b + os.urandom(3 * RECORD + 41)),
        ("the header damaged (not a store: renamed aside)", lambda b: b"\0" * 8 + b[8:]),
    ]
    for name, fn in damage:
        if bad_at is None:
            tap(False, f"damaged store, {name}", "no record of the malicious file")
            continue
        for f in os.listdir(state):
            os.unlink(os.path.join(state, f))
        write(os.path.join(state, STORE), fn(pristine))
        a = Agent(tmp, args)
        got = [open_status(good), open_status(bad)]
        src = a.source_of(bad)
        def noticed(rs):
            text = " ".join(r.get("MESSAGE", "") for r in rs)
            return "moved to" in text or re.search(r"[1-9]\d* damaged|[1-9]\d* torn bytes", text) is not None
        warn = noticed(a.records(["MESSAGE_ID=ae2a9a8d3af54e5e8f9242cd7c4a3386"], noticed))
        a.stop()
        aside = [f for f in os.listdir(state) if f.startswith(STORE + ".bad-")]
        tap(a.ready and got == ["ok", "EPERM"] and src in (["scan"], ["store"]) and warn
            and (("header" not in name) or (aside and src == ["scan"])),
            f"damaged store, {name}: the agent starts, says so in the journal, the malicious file is still refused",
            f"ready={a.ready} got={got} src={src} aside={aside} {a.d.output()[-400:]}")


def records_of(store, ino):
    data = open(store, "rb").read()
    return [data[i:i + RECORD] for i in range(RECORD, len(data) - RECORD + 1, RECORD)
            if int.from_bytes(data[i + 56:i + 64], "little") == ino]


def changing_cases(tmp, w):
    """What is recorded must be what was judged: a verdict, and a hash, are kept
    only for a file unchanged since its open arrived; and a verdict outlives the
    process only for a file whose ctime has settled."""
    state = os.path.join(tmp, "state-c")
    pol = os.path.join(tmp, "policy.json")
    args = ["--watch", w, "--policy", pol, "--state-dir", state, "--workers", "2", "--timeout", "20"]
    # A malicious pickle, then a 512 MB hole: the denial's hash round reads it
    # all (a few hundred ms) while its mode flips and ctime moves.
    moving = os.path.join(w, "moving.pkl")
    with open(moving, "wb") as f:
        f.write(evil("mov1"))
        f.truncate(512 << 20)
    LAST_WRITE[0] = time.time()
    a = Agent(tmp, args)
    done = threading.Event()
    flips = [0]

    def flip():
        while not done.is_set():
            os.chmod(moving, 0o640 if flips[0] % 2 else 0o644)
            flips[0] += 1
    got = [None]
    opener = threading.Thread(target=lambda: got.__setitem__(0, open_status(moving)))
    opener.start()
    time.sleep(0.05)
    flipper = threading.Thread(target=flip)
    flipper.start()
    opener.join()
    denials = a.records(["MODELGATE_PATH=" + moving, "MODELGATE_VERDICT=deny"], lambda rs: len(rs) > 0)
    done.set()
    flipper.join()
    a.stop()
    recs = records_of(os.path.join(state, STORE), os.stat(moving).st_ino)
    hashed = [r for r in recs if any(r[88:120])]
    tap(got[0] == "EPERM" and flips[0] > 100 and not hashed,
        "a file whose ctime moves while it is judged is refused, and no hash is recorded for a verdict it may "
        "no longer match (the content index would answer for other files by that hash)",
        f"got={got[0]} flips={flips[0]} records={len(recs)} with a hash={len(hashed)}")
    fields = [(r.get("MODELGATE_RULE"), r.get("MODELGATE_SHA256")) for r in denials]
    tap(fields and all(rule == "UNSAFE_IMPORT" and not sha for rule, sha in fields),
        "its denial record still names the rule, and carries no hash of bytes other than those judged", fields)
    os.unlink(moving)

    # Just written: answered and cached, but not persisted until it has settled.
    fresh = os.path.join(w, "fresh.pkl")
    with open(fresh, "wb") as f:
        f.write(BENIGN)
    a = Agent(tmp, args, settled=False)   # the file is a few ms old
    age = time.time() - os.stat(fresh).st_ctime
    st = open_status(fresh)
    a.records(["MODELGATE_PATH=" + fresh], lambda rs: len(rs) > 0)
    a.stop()
    recs = records_of(os.path.join(state, STORE), os.stat(fresh).st_ino)
    if age >= 1.5:
        tap(True, "a file opened within 2 s of its last change is not persisted "
                  f"# SKIP the agent took {age:.1f} s to start: the file had nearly settled before its open")
    else:
        tap(st == "ok" and recs == [],
            "a file opened within 2 s of its last change is allowed but its verdict is not persisted",
            f"status={st} records={len(recs)} age={age:.2f}s")


def attestation_cases(tmp, w):
    keys = os.path.join(tmp, "keys")
    atts = os.path.join(tmp, "attestations")
    os.makedirs(keys)
    os.makedirs(atts)
    for k in ("trusted", "other"):
        openssl("genpkey", "-algorithm", "ed25519", "-out", os.path.join(keys, k + ".pem"))
        openssl("pkey", "-in", os.path.join(keys, k + ".pem"), "-pubout", "-out", os.path.join(keys, k + ".pub"))
    trusted, other = os.path.join(keys, "trusted.pem"), os.path.join(keys, "other.pem")
    signer_pol = os.path.join(tmp, "signer-policy.json")
    write(signer_pol, b"{}")
    pol = os.path.join(tmp, "att-policy.json")
    with open(pol, "w") as f:
        json.dump({"attestation_keys": [os.path.join(keys, "trusted.pub")], "attestations": [atts]}, f)
    sha = policy_sha(pol)
    tap(sha == policy_sha(signer_pol), "attestation_keys and attestations do not change the policy hash")

    d = os.path.join(w, "att")
    os.makedirs(d)
    clean = os.path.join(d, "clean.pkl")
    write(clean, BENIGN)
    # The real CLI signs what it scanned (before the agent runs: no event).
    p = run([MODELGATE, "scan", "--policy", signer_pol, "--attest", os.path.join(atts, "ci.json"),
             "--signing-key", trusted, clean])
    v = run([MODELGATE, "attest", "verify", "--key", os.path.join(keys, "trusted.pub"), "--policy", pol,
             os.path.join(atts, "ci.json")])
    tap(p.returncode == 0 and v.returncode == 0 and b"good signature" in v.stderr,
        "modelgate scan --attest writes an envelope that modelgate attest verify accepts",
        p.stderr + v.stdout + v.stderr)
    env = json.load(open(os.path.join(atts, "ci.json")))
    pae_payload = base64.b64decode(env["payload"])
    pae = b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(pae_payload), pae_payload)
    write(os.path.join(tmp, "pae.bin"), pae)
    write(os.path.join(tmp, "sig.bin"), base64.b64decode(env["signatures"][0]["sig"]))
    vr = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", os.path.join(keys, "trusted.pub"),
                         "-rawin", "-in", os.path.join(tmp, "pae.bin"), "-sigfile", os.path.join(tmp, "sig.bin")],
                        capture_output=True)
    tap(vr.returncode == 0, "the envelope's signature verifies with the openssl CLI over DSSE's PAE (interoperable)",
        vr.stdout + vr.stderr)

    # Statements the agent must trust, and statements it must not.
    cases = {
        "signed": (evil("sig1"), envelope(trusted, sha, [(evil("sig1"), "allow")])),
        "tampered": (evil("tmp1"), envelope(trusted, sha, [(evil("tmp1"), "allow")], flip_after_sign=True)),
        "unknown-key": (evil("unk1"), envelope(other, sha, [(evil("unk1"), "allow")])),
        "other-policy": (evil("pol1"), envelope(trusted, "0" * 64, [(evil("pol1"), "allow")])),
        # attested as clean content, then the file was rewritten (same size)
        "changed": (evil("chg1"), envelope(trusted, sha, [(b"\x80\x02X\x11\x00\x00\x00" + b"c" * 17 + b".", "allow")])),
    }
    for name, (content, e) in cases.items():
        with open(os.path.join(atts, name + ".json"), "w") as f:
            json.dump(e, f)
        write(os.path.join(d, name + ".pkl"), content)
    # A Hugging Face blob named for other content, holding attested clean bytes.
    blob = os.path.join(w, "hub", "models--o--n", "blobs", hashlib.sha256(b"other").hexdigest())
    os.makedirs(os.path.dirname(blob))
    write(blob, BENIGN)

    a = Agent(tmp, ["--watch", w, "--policy", pol, "--no-store", "--workers", "2", "--timeout", "5"])
    tap(a.ready, "modelgated starts with attestation keys and a directory of envelopes, some bad", a.d.output()[-500:])
    st = {n: open_status(os.path.join(d, n + ".pkl")) for n in ["clean"] + list(cases)}
    src = {n: a.source_of(os.path.join(d, n + ".pkl")) for n in st}
    tap(st["clean"] == "ok" and src["clean"] == ["attestation"],
        "a file attested allow by modelgate scan --attest is allowed with MODELGATE_SOURCE=attestation", f"{st} {src}")
    tap(st["signed"] == "ok" and src["signed"] == ["attestation"],
        "a statement signed by a configured key is trusted without a scan (even one a scan would refuse)",
        f"{st['signed']} {src['signed']}")
    for name, why in (("tampered", "a payload byte flipped after signing"), ("unknown-key", "signed by an unknown key"),
                      ("other-policy", "made under a different policy hash"),
                      ("changed", "for other content (the file was rewritten after attesting)")):
        tap(st[name] == "EPERM" and src[name] == ["scan"],
            f"an envelope {why} is not trusted: the file is scanned and refused", f"{st[name]} {src[name]}")
    warns = a.records(["MESSAGE_ID=ae2a9a8d3af54e5e8f9242cd7c4a3386"],
                      lambda rs: sum(1 for r in rs if ".json" in r.get("MESSAGE", "")) >= 3)
    msgs = " | ".join(r.get("MESSAGE", "") for r in warns)
    tap(all(n + ".json" in msgs for n in ("tampered", "unknown-key", "other-policy")),
        "each envelope that is not trusted is reported in the journal with its file name", msgs[-800:])
    st_blob = open_status(blob)
    recs = a.records(["MODELGATE_PATH=" + blob], lambda rs: len(rs) > 0)
    tap(st_blob == "EPERM" and any(r.get("MODELGATE_RULE") == "HASH_MISMATCH" for r in recs),
        "an attested file whose Hugging Face blob name expects other content is still refused (HASH_MISMATCH)",
        f"{st_blob} {[(r.get('MODELGATE_RULE'), r.get('MODELGATE_SOURCE')) for r in recs]}")

    # Revocation: the key removed from the policy, SIGHUP: nothing it signed counts.
    with open(pol, "w") as f:
        json.dump({"attestation_keys": [], "attestations": [atts]}, f)
    a.d.p.send_signal(1)
    a.records(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], lambda rs: len(rs) > 0)
    st2 = open_status(os.path.join(d, "signed.pkl"))
    a.stop()
    tap(st2 == "EPERM", "removing the key from attestation_keys and reloading revokes its statements", st2)
    # clean, signed and the blob: three answers from statements, nothing else
    tap(a.counts.get("attested") == 3, "the daemon counts exactly the three opens answered by a statement", a.counts)

    # A key others can change is no key: skipped, and said; made private again, trusted.
    pub = os.path.join(keys, "trusted.pub")
    with open(pol, "w") as f:
        json.dump({"attestation_keys": [pub], "attestations": [atts]}, f)
    for mode, where in ((0o646, pub), (0o777, keys)):
        os.chmod(where, mode)
        a = Agent(tmp, ["--watch", w, "--policy", pol, "--no-store", "--workers", "2", "--timeout", "5"])
        st3 = open_status(os.path.join(d, "signed.pkl"))
        warns = a.records(["MESSAGE_ID=ae2a9a8d3af54e5e8f9242cd7c4a3386"],
                          lambda rs: any("writable by others" in r.get("MESSAGE", "") for r in rs))
        msgs = " | ".join(r.get("MESSAGE", "") for r in warns)
        os.chmod(where, 0o644 if where == pub else 0o755)
        a.d.p.send_signal(1)
        a.records(["MESSAGE_ID=8ddf938f136545328efd2ac75b227463"], lambda rs: len(rs) > 0)
        st4 = open_status(os.path.join(d, "signed.pkl"))
        a.stop()
        what = "a key file" if where == pub else "a key's directory"
        tap(st3 == "EPERM" and f"{where} is writable by others" in msgs and st4 == "ok",
            f"{what} writable by others is skipped with a journal warning naming it (the signed file is scanned "
            f"and refused); chmod go-w and SIGHUP trust it again",
            f"before={st3} after={st4} {msgs[-600:]}")


def hardlink_case(tmp, w, ignore_marks=False):
    """One inode, two names: a manifest pins one name to another hash. The cache
    is keyed by inode; the denial of that name must not follow the content to the
    other name, nor an allow (or an ignore mark, which is on the inode) the other
    way round."""
    d = os.path.join(w, "links-marks" if ignore_marks else "links")
    os.makedirs(os.path.join(d, "pinned"))
    os.makedirs(os.path.join(d, "plain"))
    pinned, plain = os.path.join(d, "pinned", "model.bin"), os.path.join(d, "plain", "model.bin")
    content = b"\x80\x02X\x05\x00\x00\x00links." 
    write(plain, content)
    os.link(plain, pinned)
    manifest = os.path.join(tmp, os.path.basename(d) + "-manifest.json")
    with open(manifest, "w") as f:
        json.dump({"root": os.path.join(d, "pinned"), "files": {"model.bin": {"sha256": "ab" * 32}}}, f)
    pol = os.path.join(tmp, os.path.basename(d) + "-policy.json")
    with open(pol, "w") as f:
        json.dump({"manifests": [manifest], "ignore_marks": ignore_marks}, f)
    a = Agent(tmp, ["--watch", w, "--policy", pol, "--no-store", "--workers", "1"], settled=False)
    got = [open_status(p) for p in (pinned, plain, pinned, plain)]
    a.stop()
    tap(a.ready and got == ["EPERM", "ok", "EPERM", "ok"],
        "one inode under two names, one pinned by a manifest to another hash: that name is refused "
        "(HASH_MISMATCH), the other still opens, in either order, the verdict cache "
        + ("and ignore_marks " if ignore_marks else "") + "notwithstanding", got)


def blob_marks_case(tmp, w):
    """ignore_marks with no manifest: a Hugging Face blob name still expects a
    hash. A file allowed (and marked) under a plain name, then linked or moved to
    a blob name that does not match it, is checked again under that name; a blob
    opened first through a bind mount (no /blobs/ in its path) is not marked."""
    d = os.path.join(w, "blobmarks")
    blobs = os.path.join(d, "hub", "models--x--y", "blobs")
    os.makedirs(blobs)
    pol = os.path.join(tmp, "blobmarks-policy.json")
    with open(pol, "w") as f:
        json.dump({"ignore_marks": True}, f)
    wrong = hashlib.sha256(b"the genuine model").hexdigest()
    content = b"\x80\x02X\x05\x00\x00\x00marks."
    a = Agent(tmp, ["--watch", w, "--policy", pol, "--no-store", "--workers", "1"], settled=False)
    res = {}
    p = os.path.join(d, "b.bin")
    write(p, content + b"B")
    first = open_status(p)
    b = os.path.join(blobs, wrong[:-1] + "b")
    os.rename(p, b)
    time.sleep(0.2)   # the move's event is read after the fact (see modelgate-policy(5))
    res["moved"] = (first, open_status(b))
    b = os.path.join(blobs, wrong[:-1] + "c")
    write(b, content + b"C")
    bm = os.path.join(d, "models")
    os.makedirs(bm)
    run(["mount", "--bind", blobs, bm])
    res["bind mount"] = (open_status(os.path.join(bm, os.path.basename(b))), open_status(b))
    run(["umount", bm])
    a.stop()
    tap(a.ready and all(v == ("ok", "EPERM") for v in res.values()),
        "ignore_marks: a file allowed under a plain name, then moved to a Hugging Face blob name it does "
        "not match, is refused under that name; so is a blob first opened through a bind mount", res)


def fifo_case(tmp, w):
    """A FIFO where an envelope is expected (an attestations directory others may
    write: envelopes are signed): skipped, never waited for — at start, at a
    reload, and at exit, which waits for a reload in flight."""
    atts = os.path.join(tmp, "atts-fifo")
    os.makedirs(atts)
    os.mkfifo(os.path.join(atts, "evil.json"))
    key = os.path.join(tmp, "fifo-key.pem")
    openssl("genpkey", "-algorithm", "ed25519", "-out", key)
    openssl("pkey", "-in", key, "-pubout", "-out", key + ".pub")
    pol = os.path.join(tmp, "fifo-policy.json")
    with open(pol, "w") as f:
        json.dump({"attestation_keys": [key + ".pub"], "attestations": [atts]}, f)
    t0 = time.monotonic()
    a = Agent(tmp, ["--watch", w, "--policy", pol, "--no-store", "--workers", "1"], settled=False)
    started = time.monotonic() - t0
    a.d.p.send_signal(1)
    time.sleep(0.3)
    t1 = time.monotonic()
    a.d.p.send_signal(1)
    a.d.p.send_signal(15)
    try:
        rc = a.d.p.wait(10)
    except subprocess.TimeoutExpired:
        rc = "still running after 10 s"
    took = time.monotonic() - t1
    a.stop()
    tap(a.ready and rc == 0 and took < 3 and "evil.json" in a.d.output(),
        f"a FIFO among the envelopes is skipped and named: ready in {started:.1f} s, SIGHUP then SIGTERM exits in "
        f"{took:.2f} s", f"ready={a.ready} rc={rc} {a.d.output()[-600:]}")


def main():
    tmp = tempfile.mkdtemp(prefix="mg-agent-store-", dir="/var/tmp")
    mnt = os.path.join(tmp, "mnt")
    os.makedirs(mnt)
    started = None
    try:
        if run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt]).returncode != 0:
            print("1..0 # SKIP cannot mount a tmpfs (needs root)")
            return 0
        if not shutil.which("openssl"):
            print("1..0 # SKIP the openssl CLI is missing (Debian package openssl)")
            return 0
        started, why = ac.ensure_journald()
        tap(why is None, "journald is running and returns a record written to it", why)
        w = os.path.join(mnt, "w")
        os.makedirs(w)
        store_cases(tmp, w)
        changing_cases(tmp, w)
        fifo_case(tmp, w)
        hardlink_case(tmp, w)
        hardlink_case(tmp, w, ignore_marks=True)
        blob_marks_case(tmp, w)
        attestation_cases(tmp, w)
    finally:
        run(["umount", "-l", mnt])
        for j in [started] + JOURNALDS:
            if j:
                j.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{len(ac.results)}")
    return 0 if all(ac.results) and ac.results else 1


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("1..0 # SKIP modelgated needs root (fanotify permission events)")
        sys.exit(0)
    sys.exit(main())
