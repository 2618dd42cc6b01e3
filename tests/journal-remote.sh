#!/bin/bash
# journal-remote.sh — the audit trail leaves the node: a real systemd-journal-remote
# listens on loopback (plain HTTP), a real systemd-journal-upload sends this machine's
# journal to it, modelgated refuses a malicious pickle to a real open(), and the denial
# is read back from the *remote* journal file with every field of DESIGN.md checked.
# Needs root (fanotify permission events, a tmpfs of our own). Every wait has a deadline.
set -u
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$srcdir/tests/tap.sh"
PYTHON3=${PYTHON3:-python3}
MODELGATED=${MODELGATED:-${TOP_BUILDDIR:-$srcdir}/modelgated}
MODELGATE=${MODELGATE:-${TOP_BUILDDIR:-$srcdir}/modelgate}
REMOTE=/lib/systemd/systemd-journal-remote
UPLOAD=/lib/systemd/systemd-journal-upload
JOURNALD=/lib/systemd/systemd-journald
DEADLINE=30             # seconds for the denial to reach the remote journal

# The TAP driver counts a non-zero exit as an error: a skip is "1..0 # SKIP why", status 0.
[ "$(id -u)" -eq 0 ] || skip "needs root: modelgated's fanotify permission events and a private tmpfs"
for b in "$REMOTE" "$UPLOAD"; do
        [ -x "$b" ] || skip "$b is missing (apt-get install systemd-journal-remote)"
done
command -v journalctl >/dev/null || skip "journalctl is missing"
[ -x "$MODELGATED" ] || skip "$MODELGATED is not built"

# tests/agent.sh may start and stop a journald of its own: not while this test runs.
exec 9>/var/tmp/modelgate-tests-journald.lock
flock -w 1800 9 || skip "tests/agent.sh held the journald lock for 30 minutes"
tmp=$(mktemp -d /var/tmp/mg-journal-remote.XXXXXX)
chmod 0755 "$tmp"             # the opener runs as nobody: it must reach the file
pids=()
journald_pid=
cleanup() {
        local p
        for p in "${pids[@]+"${pids[@]}"}"; do
                kill -TERM "$p" 2>/dev/null
        done
        for p in "${pids[@]+"${pids[@]}"}"; do
                timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        if [ -n "$journald_pid" ]; then
                kill -TERM "$journald_pid" 2>/dev/null
                wait "$journald_pid" 2>/dev/null
        fi
        mountpoint -q "$tmp/mnt" && umount "$tmp/mnt"
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

until_deadline() {      # SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds
        local end=$((SECONDS + $1))
        shift
        until "$@"; do
                ((SECONDS < end)) || return 1
                sleep 0.2
        done
}

journald_listening() {  # a socket file left by a dead journald refuses connect()
        "$PYTHON3" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.connect("/run/systemd/journal/socket")
except OSError:
    sys.exit(1)' 2>/dev/null
}

# ---- 1. a local journal: the running journald, else one of our own (as tests/agent.sh)
if ! journald_listening; then
        [ -x "$JOURNALD" ] || skip "no journald runs and $JOURNALD is missing"
        mkdir -p /run/systemd/journal
        "$JOURNALD" >/dev/null 2>&1 &
        journald_pid=$!
        until_deadline 10 journald_listening || skip "$JOURNALD did not start listening"
fi
tag=mg-remote-probe-$$-$RANDOM
echo probe | systemd-cat -t "$tag"
check "the local journal takes a record and journalctl returns it" \
        until_deadline 10 bash -c 'journalctl --no-pager -q -o cat -t "$1" | grep -q probe' _ "$tag"
# Upload from here on: what is already in the journal is not this test's business.
cursor=$(journalctl --no-pager -q -n 1 -o export -t "$tag" | sed -n 's/^__CURSOR=//p')

# ---- 2. systemd-journal-remote on a free loopback port, writing one journal file
remote_out=$tmp/remote/remote.journal
mkdir -p "$tmp/remote"
port_listening() { "$PYTHON3" -c '
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"; }
remote_pid=
for try in 1 2 3; do
        port=$("$PYTHON3" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        "$REMOTE" --listen-http="127.0.0.1:$port" --output="$remote_out" --split-mode=none \
                >"$tmp/remote.log" 2>&1 &
        remote_pid=$!
        if until_deadline 10 port_listening "$port"; then break; fi
        kill -TERM "$remote_pid" 2>/dev/null; wait "$remote_pid" 2>/dev/null; remote_pid=
done
if [ -n "$remote_pid" ]; then
        pids+=("$remote_pid")
        ok "systemd-journal-remote listens on http://127.0.0.1:$port, output $remote_out"
else
        not_ok "systemd-journal-remote listens on a loopback port"
        diag <"$tmp/remote.log"
        echo "1..$n"; exit 1
fi

# ---- 3. systemd-journal-upload: the local journal to it, following
upload_args=(--url="http://127.0.0.1:$port" --save-state="$tmp/upload.state")
[ -z "$cursor" ] || upload_args+=(--after-cursor="$cursor")
"$UPLOAD" "${upload_args[@]}" >"$tmp/upload.log" 2>&1 &
upload_pid=$!
pids+=("$upload_pid")
tag2=mg-remote-marker-$$-$RANDOM
echo marker | systemd-cat -t "$tag2"
remote_has() {  # journalctl MATCH... on the remote file: a record?
        journalctl --no-pager -q --file="$remote_out" -o cat "$@" 2>/dev/null | grep -q .
}
if until_deadline "$DEADLINE" remote_has -t "$tag2"; then
        ok "systemd-journal-upload delivers a local record to the remote journal"
else
        not_ok "systemd-journal-upload delivers a local record to the remote journal"
        { echo "upload:"; cat "$tmp/upload.log"; echo "remote:"; cat "$tmp/remote.log"; } | diag
fi

# ---- 4. modelgated on a private tmpfs holding a malicious pickle
mkdir -p "$tmp/mnt"
mount -t tmpfs -o size=16m,mode=0755 mg-journal-remote "$tmp/mnt" || { not_ok "mount a tmpfs"; echo "1..$n"; exit 1; }
evil=$tmp/mnt/models/evil.pkl
mkdir -p "$(dirname "$evil")"
# A pickle whose loading would call os.system("true"): pickled, never loaded.
"$PYTHON3" -c '
import os, pickle, sys
class Payload:
    def __reduce__(self):
        return (os.system, ("true",))
with open(sys.argv[1], "wb") as f:
    pickle.dump({"weights": [0.5, 1.5], "hook": Payload()}, f, protocol=2)' "$evil"
chmod 0644 "$evil"
sha=$(sha256sum "$evil" | cut -d' ' -f1)
echo '{}' >"$tmp/policy.json"
"$MODELGATED" --worker-exe "$MODELGATE" --watch "$tmp/mnt/models" --policy "$tmp/policy.json" \
        >"$tmp/modelgated.log" 2>&1 &
mg_pid=$!
pids+=("$mg_pid")
if until_deadline 20 grep -q '^modelgated: ready' "$tmp/modelgated.log"; then
        ok "modelgated is ready on $tmp/mnt/models"
else
        not_ok "modelgated is ready on $tmp/mnt/models"
        diag <"$tmp/modelgated.log"
fi

# ---- 5. a real open(), by an unprivileged user when setpriv can make one
# (Debian's /usr/bin/python3: a python3 under root's home cannot run as nobody.)
opener=("$PYTHON3")
uid=0
if command -v setpriv >/dev/null && [ -x /usr/bin/python3 ] &&
   setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c pass 2>/dev/null; then
        opener=(setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3)
        uid=65534
fi
timeout 30 "${opener[@]}" -c '
import errno, os, sys
print(os.getpid(), os.path.realpath("/proc/self/exe"), flush=True)
try:
    open(sys.argv[1], "rb").close()
    print("opened")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))' "$evil" >"$tmp/open.out" 2>&1
read -r open_pid open_exe <"$tmp/open.out"
open_result=$(sed -n 2p "$tmp/open.out")
if [ "$open_result" = EPERM ]; then
        ok "open() of the malicious pickle gets EPERM (pid $open_pid, uid $uid)"
else
        not_ok "open() of the malicious pickle gets EPERM (got: ${open_result:-nothing})"
        diag <"$tmp/open.out"
fi

# ---- 6. the denial, read back from the remote journal only
remote_deny() {
        journalctl --no-pager -q --file="$remote_out" -o json MODELGATE_VERDICT=deny MODELGATE_PATH="$evil" \
                >"$tmp/remote-deny.json" 2>"$tmp/remote-deny.err" && grep -q MODELGATE_SHA256 "$tmp/remote-deny.json"
}
start=$SECONDS
if until_deadline "$DEADLINE" remote_deny; then
        ok "the denial is in the remote journal ($((SECONDS - start)) s after the open)"
else
        not_ok "the denial is in the remote journal within ${DEADLINE} s"
        { echo "remote journal:"; journalctl --no-pager -q --file="$remote_out" -o short 2>&1 | tail -n 5
          echo "local:"; journalctl --no-pager -q -t modelgated -o short 2>&1 | tail -n 5
          echo "upload:"; tail -n 5 "$tmp/upload.log"; echo "modelgated:"; tail -n 5 "$tmp/modelgated.log"; } | diag
fi

# The collector's way to read it: the whole directory, by identifier and verdict.
check "journalctl -D (the collector's directory) -t modelgated MODELGATE_VERDICT=deny finds it" \
        bash -c 'journalctl --no-pager -q -D "$1" -t modelgated MODELGATE_VERDICT=deny -o cat | grep -qF "$2"' _ \
        "$tmp/remote" "$evil"

# Every field, one case each: the record as journalctl --file ... -o json gives it.
"$PYTHON3" - "$tmp/remote-deny.json" "$evil" "$sha" "$open_pid" "$open_exe" "$uid" \
        "$(sed -n 's/^#define MG_MSGID_DENY *"\([0-9a-f]*\)".*/\1/p' "$srcdir/agent/journal-ids.h")" \
        "$(hostname)" "$n" <<'EOF' >"$tmp/fields.tap"
import json, sys
path, evil, sha, pid, exe, uid, msgid, host, n = sys.argv[1:]
n = int(n)
recs = []
for line in open(path, encoding="utf-8", errors="replace"):
    try:
        recs.append(json.loads(line))
    except ValueError:
        pass
# The denial with its hash: the one written when the open was refused (there is one
# open, so one record; a later cached refusal would be another).
recs = [r for r in recs if r.get("MODELGATE_SHA256")]
r = recs[0] if recs else {}
want = {
    "SYSLOG_IDENTIFIER": "modelgated",
    "MESSAGE_ID": msgid,
    "PRIORITY": "4",
    "MODELGATE_VERDICT": "deny",
    "MODELGATE_PATH": evil,
    "MODELGATE_RULE": "UNSAFE_IMPORT",
    "MODELGATE_SEVERITY": "critical",
    "MODELGATE_GLOBAL": "posix:system",
    "MODELGATE_SHA256": sha,
    "MODELGATE_PID": pid,
    "MODELGATE_EXE": exe,
    "MODELGATE_UID": uid,
}
for k, v in want.items():
    n += 1
    got = r.get(k)
    print(("ok" if got == v else "not ok") + f" {n} - remote record: {k}={v}" +
          ("" if got == v else f" (got {got!r})"))
n += 1
got = r.get("_HOSTNAME")
print(("ok" if got == host else "not ok") + f" {n} - remote record names the node it came from: _HOSTNAME={host}" +
      ("" if got == host else f" (got {got!r})"))
EOF
while read -r line; do
        case $line in
        "ok "*) ok "${line#ok [0-9]* - }" ;;
        "not ok "*) not_ok "${line#not ok [0-9]* - }" ;;
        esac
done <"$tmp/fields.tap"
if [ "$fail" != 0 ]; then
        { echo "remote records:"; cat "$tmp/remote-deny.json"; } | diag
fi
echo "1..$n"
exit "$fail"
