#!/bin/bash
# cli-input.sh — `modelgate scan` on bad input: a tree holding an unreadable file, a
# dangling and a self-referencing symbolic link, a FIFO, a socket, device nodes and
# links to /dev/zero and /dev/null, a link to an ancestor, a 5 GiB sparse file, and
# names with a newline, a tab, invalid UTF-8, a quote, a comma and a backslash. In
# every format: one message per bad input on stderr naming it (escaped), the other
# files decided, exit status 2, no raw control byte or invalid UTF-8 anywhere, and
# output its format's own reader takes (checked by cli-input-check.py). Then a missing
# PATH, an empty directory, an unreadable directory, special files given as PATH, a
# bind-mount loop, deep nesting, files that change during the scan. Every run is
# bounded by timeout(1). As root, the runs go through setpriv(1) as nobody, since
# root reads a mode-000 file; cases that need what is missing are skipped, saying why.
set -u
. "${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/tap.sh"
: "${MODELGATE:?}" "${PYTHON3:=python3}"
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
check_report=$srcdir/../shared/tools/check-report.py
[ -f "$check_report" ] || check_report=$srcdir/tests/check-report.py
chk=$srcdir/tests/cli-input-check.py
LIMIT=60   # seconds for any one scan here; each takes well under one

umask 022
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/cli-input.XXXXXX") || exit 99
chmod 755 "$tmp"
trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

skip_case() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

# Who runs the scans: as root, nobody (root is not stopped by mode 000).
runas=()
unpriv=0
if [ "$(id -u)" -ne 0 ]; then
        unpriv=1
elif command -v setpriv >/dev/null &&
     setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$MODELGATE" 2>/dev/null; then
        runas=(setpriv --reuid=65534 --regid=65534 --clear-groups)
        unpriv=1
else
        why="root, and nobody cannot run $MODELGATE (or no setpriv): root reads a mode-000 file"
fi
scan() { timeout "$LIMIT" "${runas[@]}" "$MODELGATE" scan "$@"; }

# ---- the tree ------------------------------------------------------------------
T=$tmp/in
mkdir -p "$T"
printf '\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s.' >"$T/good.pkl"   # {'a': 1}
printf '\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R.' >"$T/evil.pkl"   # os.system("true")
for name in $'new\nline.pkl' $'tab\there.pkl' $'bad\xff\xfename.pkl' 'q"uo,te\back.pkl'; do
        cp "$T/evil.pkl" "$T/$name"
done
cp "$T/good.pkl" "$T/unreadable.pkl"
chmod 000 "$T/unreadable.pkl"
ln -s nowhere "$T/dangling.bin"
ln -s self-loop.bin "$T/self-loop.bin"
ln -s .. "$T/up"
ln -s /dev/zero "$T/zero-link.bin"
ln -s /dev/null "$T/null-link.bin"
mkfifo "$T/fifo.bin"
"$PYTHON3" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/sock.bin"
devices=0
if mknod "$T/zero.dev" c 1 5 2>/dev/null && mknod "$T/null.dev" c 1 3 2>/dev/null; then
        devices=1
else
        rm -f "$T/zero.dev" "$T/null.dev"
        echo "# no device nodes in the tree (mknod needs CAP_MKNOD); links to /dev/zero and /dev/null stand in"
fi
truncate -s 5G "$T/sparse.bin"
[ $unpriv -eq 1 ] || echo "# unreadable.pkl is read after all: $why"
export TREE=$T UNREADABLE=$unpriv DEVICES=$devices

# ---- the tree in each format -----------------------------------------------------
for fmt in text json sarif csv; do
        start=$(date +%s)
        scan --format "$fmt" "$T" >"$tmp/out.$fmt" 2>"$tmp/err.$fmt"; st=$?
        secs=$(($(date +%s) - start))
        check "$fmt: the bad tree is scanned to the end, exit 2 (got $st, ${secs} s, limit $LIMIT s)" test $st -eq 2
        check "$fmt: stdout and stderr are UTF-8 without raw control bytes" \
                "$PYTHON3" "$chk" clean-bytes "$fmt" "$tmp/out.$fmt" "$tmp/err.$fmt"
        check "$fmt: the output parses as $fmt" "$PYTHON3" "$chk" parses "$fmt" "$tmp/out.$fmt" "$tmp/err.$fmt"
        check "$fmt: every file has its verdict, unreadable inputs are listed with SCAN_ERROR, skipped ones are not" \
                "$PYTHON3" "$chk" verdicts "$fmt" "$tmp/out.$fmt" "$tmp/err.$fmt"
        check "$fmt: stderr has one line per bad input, naming it escaped" \
                "$PYTHON3" "$chk" stderr "$fmt" "$tmp/out.$fmt" "$tmp/err.$fmt"
done
check "json: the bad tree's report passes check-report.py" bash -c "'$PYTHON3' '$check_report' '$tmp/out.json' >/dev/null"
check "sarif: a location's uri is percent-encoded from the raw name (%FF%FE, %0A)" \
        bash -c "grep -q 'bad%FF%FEname.pkl' '$tmp/out.sarif' && grep -q 'new%0Aline.pkl' '$tmp/out.sarif' && ! grep -q '%5Cx' '$tmp/out.sarif'"
if [ $unpriv -eq 1 ]; then
        check "the unreadable file is named on stderr and denied with SCAN_ERROR" \
                bash -c "grep -qxF 'modelgate: $T/unreadable.pkl: cannot open: Permission denied' '$tmp/err.text' &&
                         grep -qxF '$T/unreadable.pkl: HIGH SCAN_ERROR: cannot open: Permission denied' '$tmp/out.text'"
else
        skip_case "the unreadable file is named on stderr and denied with SCAN_ERROR" "$why"
fi

# ---- the 5 GiB sparse file: decided from its first bytes, not read through -------
start=$(date +%s%N)
scan "$T/sparse.bin" >"$tmp/out" 2>"$tmp/err"; st=$?
ms=$((($(date +%s%N) - start) / 1000000))
echo "# 5 GiB sparse file: ${ms} ms"
check "a 5 GiB sparse file is unknown data, allowed, in under 5 s (${ms} ms)" \
        bash -c "[ $st -eq 0 ] && [ $ms -lt 5000 ] && grep -qxF '$T/sparse.bin: ALLOW unknown' '$tmp/out'"

# ---- special files given as PATH: refused without being opened -------------------
for p in "$T/fifo.bin" "$T/sock.bin" /dev/zero "$T/zero-link.bin"; do
        scan --format json "$p" "$T/good.pkl" >"$tmp/out" 2>"$tmp/err"; st=$?
        check "PATH ${p##*/} (not a file or directory): exit 2, named, listed with SCAN_ERROR, the rest scanned" \
                "$PYTHON3" -c "
import json, sys
d = json.load(open('$tmp/out'))
err = open('$tmp/err').read()
f = {x['path']: x for x in d['files']}
sys.exit(not ($st == 2 and 'modelgate: $p: not a regular file or directory' in err
              and [x['rule'] for x in f['$p']['findings']] == ['SCAN_ERROR']
              and f['$T/good.pkl']['verdict'] == 'allow'))"
done

# ---- missing PATH, empty directory, unreadable directory ------------------------
scan --format json "$tmp/does-not-exist" "$T/good.pkl" >"$tmp/out" 2>"$tmp/err"; st=$?
check "a missing PATH: exit 2, named on stderr, listed with SCAN_ERROR, the rest scanned" \
        "$PYTHON3" -c "
import json, sys
d = json.load(open('$tmp/out'))
f = {x['path']: x for x in d['files']}
m = f['$tmp/does-not-exist']['findings']
sys.exit(not ($st == 2 and 'modelgate: $tmp/does-not-exist: cannot access: No such file or directory\n' in open('$tmp/err').read()
              and m[0]['rule'] == 'SCAN_ERROR' and 'No such file' in m[0]['message']
              and f['$T/good.pkl']['verdict'] == 'allow'))"
check "the report with a missing PATH passes check-report.py" bash -c "'$PYTHON3' '$check_report' '$tmp/out' >/dev/null"

mkdir "$tmp/empty"
for fmt in text json sarif csv; do
        scan --format "$fmt" "$tmp/empty" >"$tmp/out.$fmt" 2>"$tmp/err"; st=$?
        check "$fmt: an empty directory exits 0 with an empty, valid report and nothing on stderr" \
                "$PYTHON3" -c "
import csv, json, sys
out = open('$tmp/out.$fmt', newline='').read()
fmt = '$fmt'
ok = $st == 0 and open('$tmp/err').read() == ''
if fmt == 'json':
    d = json.loads(out); ok = ok and d['files'] == [] and d['summary']['files'] == 0
elif fmt == 'sarif':
    d = json.loads(out); ok = ok and d['runs'][0]['results'] == []
elif fmt == 'csv':
    ok = ok and len(list(csv.reader(out.splitlines()))) == 1
else:
    ok = ok and out == '0 files scanned: 0 allowed, 0 denied\n'
sys.exit(not ok)"
done
check "the empty directory's report passes check-report.py" bash -c "'$PYTHON3' '$check_report' '$tmp/out.json' >/dev/null"

mkdir -p "$tmp/closed/inner"
cp "$T/evil.pkl" "$tmp/closed/inner/x.pkl"
cp "$T/good.pkl" "$tmp/open.pkl"
chmod 700 "$tmp/closed/inner"
if [ $unpriv -eq 1 ]; then
        chmod 300 "$tmp/closed/inner"   # no read: cannot be listed
        scan --format json "$tmp/closed" "$tmp/open.pkl" >"$tmp/out" 2>"$tmp/err"; st=$?
        check "a directory without read permission: exit 2, named, listed with SCAN_ERROR, the rest scanned" \
                "$PYTHON3" -c "
import json, sys
d = json.load(open('$tmp/out'))
f = {x['path']: x for x in d['files']}
sys.exit(not ($st == 2 and 'modelgate: $tmp/closed/inner: cannot open directory: Permission denied\n' in open('$tmp/err').read()
              and f['$tmp/closed/inner']['findings'][0]['rule'] == 'SCAN_ERROR'
              and f['$tmp/open.pkl']['verdict'] == 'allow' and len(f) == 2))"
        chmod 700 "$tmp/closed/inner"
else
        skip_case "a directory without read permission: exit 2, named, listed with SCAN_ERROR, the rest scanned" "$why"
fi

# ---- files named by options: special files, odd names, hostile manifest entries ------
# stderr must stay one escaped line: no raw newline, escape sequence or invalid UTF-8.
one_clean_line() {   # file with stderr, text it must contain
        "$PYTHON3" -c "
import sys
b = open(sys.argv[1], 'rb').read()
ok = b.count(b'\n') == 1 and b.endswith(b'\n') and not any(c < 0x20 and c != 10 or c == 0x7f for c in b)
try:
    ok = ok and sys.argv[2] in b.decode('utf-8')
except UnicodeDecodeError:
    ok = False
sys.exit(not ok)" "$@"
}
exit2_one_clean_line() { [ "$1" -eq 2 ] && shift && one_clean_line "$@"; }
for o in "--policy:$T/fifo.bin:not a regular file" "--policy:/dev/zero:not a regular file" \
         "--manifest:$T/fifo.bin:not a regular file" "--manifest:/dev/zero:not a regular file" \
         "--policy:$T/sparse.bin:larger than" "--manifest:$T/sparse.bin:larger than" \
         "--manifest:$T/dangling.bin:No such file"; do
        IFS=: read -r opt arg what <<<"$o"
        scan "$opt" "$arg" "$T/good.pkl" >/dev/null 2>"$tmp/err"; st=$?
        check "$opt ${arg##*/}: exit 2 at once, one line saying '$what'" \
                bash -c "[ $st -eq 2 ] && grep -q '$what' '$tmp/err' && [ \$(wc -l <'$tmp/err') -eq 1 ]"
done
cp "$T/good.pkl" "$tmp/$(printf 'm\nx\xff.json')"
scan --manifest "$tmp/$(printf 'm\nx\xff.json')" "$T/good.pkl" >/dev/null 2>"$tmp/err"; st=$?
check "--manifest with a newline and invalid UTF-8 in its name: exit 2, the name escaped on one line" \
        exit2_one_clean_line $st "$tmp/err" 'm\x0ax\xff.json: not valid JSON'
sha=$(printf 'a%.0s' $(seq 64))
printf '{"files":{"ok":{"sha256":"%s"},"../\\u001b[31mx\\ny":{"sha256":"%s"}}}' "$sha" "$sha" >"$tmp/hostile.json"
scan --manifest "$tmp/hostile.json" "$T/good.pkl" >/dev/null 2>"$tmp/err"; st=$?
check "a manifest entry with an escape sequence and a newline: exit 2, the entry escaped on one line" \
        exit2_one_clean_line $st "$tmp/err" 'entry "../\x1b[31mx\x0ay": a path must be relative'
timeout "$LIMIT" "$MODELGATE" manifest "$tmp/$(printf 'no\x1b[31mdir')" >/dev/null 2>"$tmp/err"; st=$?
check "modelgate manifest on a missing DIR with an escape sequence in its name: exit 2, escaped" \
        exit2_one_clean_line $st "$tmp/err" 'no\x1b[31mdir: No such file or directory'

# ---- a report that cannot be written --------------------------------------------
for fmt in text json; do
        timeout "$LIMIT" "$MODELGATE" scan --format $fmt "$T/good.pkl" >/dev/full 2>"$tmp/err"; st=$?
        check "$fmt: a report that cannot be written (stdout on /dev/full) exits 2, saying so" \
                bash -c "[ $st -eq 2 ] && grep -q 'the report could not be written' '$tmp/err'"
done

# ---- loops and depth ----------------------------------------------------------------
mkdir -p "$tmp/bm/sub"
cp "$T/good.pkl" "$tmp/bm/a.pkl"
if [ "$(id -u)" -eq 0 ] && unshare --mount --propagation private true 2>/dev/null; then
        # In a private mount namespace: nothing outlives the test.
        timeout "$LIMIT" unshare --mount --propagation private bash -c \
                'mount --bind "$1" "$1/sub" && exec "${@:3}" "$2" scan --format json "$1"' \
                - "$tmp/bm" "$MODELGATE" "${runas[@]}" >"$tmp/out" 2>"$tmp/err"; st=$?
        check "a bind-mount loop: exit 2, 'directory loop' named, each file once" \
                "$PYTHON3" -c "
import json, sys
d = json.load(open('$tmp/out'))
paths = [x['path'] for x in d['files']]
sys.exit(not ($st == 2 and 'modelgate: $tmp/bm/sub: directory loop (already being walked higher up), not entered\n' in open('$tmp/err').read()
              and paths.count('$tmp/bm/a.pkl') == 1))"
else
        skip_case "a bind-mount loop: exit 2, 'directory loop' named, each file once" "needs root and unshare --mount"
fi

deep=$tmp/deep
mkdir -p "$deep/$(printf 'd/%.0s' $(seq 1 300))"
cp "$T/good.pkl" "$deep/top.pkl"
scan "$deep" >"$tmp/out" 2>"$tmp/err"; st=$?
check "300 nested directories: exit 2, 'nested too deep' named once, the rest scanned" \
        bash -c "[ $st -eq 2 ] && [ \$(grep -c 'directories nested too deep, not entered' '$tmp/err') -eq 1 ] &&
                 grep -qxF '$deep/top.pkl: ALLOW pickle' '$tmp/out'"

# ---- files that change while the scan runs ---------------------------------------
# --jobs 1 and a 2 GiB file hashed first: the walk reaches the later names only
# when that hash is done, after they were changed. The change is made once the
# worker is seen holding the big file.
R=$tmp/race
mkdir -p "$R"
truncate -s 2G "$R/a-slow.bin"
for x in b c d e; do cp "$T/good.pkl" "$R/$x.pkl"; done
timeout "$LIMIT" "${runas[@]}" "$MODELGATE" scan --jobs 1 --sha256 --format json "$R" >"$tmp/out" 2>"$tmp/err" &
pid=$!
seen=0
for _ in $(seq 1 200); do
        if find /proc/[0-9]*/fd -lname "$R/a-slow.bin" 2>/dev/null | grep -q .; then
                seen=1
                break
        fi
        sleep 0.02
done
if [ $seen -eq 1 ]; then
        rm "$R/c.pkl"
        rm "$R/d.pkl" && mkfifo "$R/d.pkl"
        cp "$T/evil.pkl" "$R/e.new" && mv "$R/e.new" "$R/e.pkl"
fi
wait $pid; st=$?
if [ $seen -eq 1 ]; then
        check "files changed during the scan: a removed one is an error, one now a FIFO is skipped, a replaced one is scanned as it is now" \
                "$PYTHON3" -c "
import json, sys
d = json.load(open('$tmp/out'))
err = open('$tmp/err').read()
f = {x['path']: x for x in d['files']}
sys.exit(not ($st == 2 and f['$R/b.pkl']['verdict'] == 'allow'
              and f['$R/c.pkl']['findings'][0]['rule'] == 'SCAN_ERROR' and 'modelgate: $R/c.pkl: cannot access' in err
              and '$R/d.pkl' not in f and 'modelgate: $R/d.pkl: skipped: a FIFO' in err
              and f['$R/e.pkl']['verdict'] == 'deny'))"
else
        skip_case "files changed during the scan: a removed one is an error, one now a FIFO is skipped, a replaced one is scanned as it is now" \
                "the worker was not seen holding the big file (could not read /proc, or the hash was already done)"
fi
check "a scan with files changing under it exits in time (status $st, not 124)" test $st -ne 124

echo "1..$n"
exit $fail
