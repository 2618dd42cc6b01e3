#!/bin/bash
# cli-store.sh — `modelgate scan --store DIR`: a second run answers every unchanged
# file from the store with the same verdicts and worst rules; a rewritten file
# (same size, mtime put back) and a policy change are scanned again; a damaged or
# cut store never gives a wrong verdict; expected hashes are checked on every run;
# a store of another user, one others can write, and one in use are refused.
# The tree comes from tests/audit/make-tree.py.
set -u
. "${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/tap.sh"
: "${MODELGATE:?}" "${PYTHON3:=python3}"
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
check_report=$srcdir/../shared/tools/check-report.py
[ -f "$check_report" ] || check_report=$srcdir/tests/check-report.py
M=$MODELGATE

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/cli-store.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py() { "$PYTHON3" -c "$@"; }

"$PYTHON3" "$srcdir/tests/audit/make-tree.py" "$tmp/tree" --repos 30 >"$tmp/expect.json" || skip "cannot generate the test tree"
# Two files of the same size: an allowed pickle, and a malicious one to overwrite it with.
py "
import pickle, sys
good = pickle.dumps('a' * 100, protocol=2)
head, tail = b\"cposix\nsystem\n(S'\", b\"'\ntR.\"
bad = head + b'true' + b' ' * (len(good) - len(head) - len(tail) - 4) + tail
assert len(bad) == len(good)
open('$tmp/tree/victim.pkl', 'wb').write(good)
open('$tmp/bad.pkl', 'wb').write(bad)
" || skip "cannot write the victim pickle"
# A verdict is recorded only for a file whose ctime is 2 s old (STORE_SETTLE_S).
sleep 3

echo "1..16"

# A summary of a JSON report: per path (verdict, format, size), the worst rule of
# each denied file (first of the highest severity, not HASH_MISMATCH), sources.
summ() { py "
import json, sys
d = json.load(open(sys.argv[1]))
sev = ['info', 'low', 'medium', 'high', 'critical']
out = {'files': {}, 'worst': {}, 'source': {}}
for f in d['files']:
    out['files'][f['path']] = [f['verdict'], f['format'], f['size']]
    src = f.get('source')
    out['source'][src] = out['source'].get(src, 0) + 1
    if f['verdict'] == 'deny':
        w = None
        for x in f['findings']:
            if x['rule'] != 'HASH_MISMATCH' and (w is None or sev.index(x['severity']) > sev.index(w['severity'])):
                w = x
        out['worst'][w['rule']] = out['worst'].get(w['rule'], 0) + 1
json.dump(out, sys.stdout, sort_keys=True)
" "$1"; }
source_of() { py "import json, sys; print([f.get('source') for f in json.load(open(sys.argv[1]))['files'] if f['path'] == sys.argv[2]][0])" "$1" "$2"; }
verdict_of() { py "import json, sys; print([f['verdict'] for f in json.load(open(sys.argv[1]))['files'] if f['path'] == sys.argv[2]][0])" "$1" "$2"; }
scan() { "$M" scan --jobs 2 --format json --store "$tmp/store" "$@" "$tmp/tree"; }
export -f py summ source_of verdict_of
export PYTHON3

scan >"$tmp/cold.json" 2>"$tmp/cold.err"; st=$?
files=$(py "import json; print(json.load(open('$tmp/cold.json'))['summary']['files'])")
check "cold run: every file scanned and recorded, the directory made 0700, JSON passes check-report.py" bash -c "
        [ $st -eq 1 ] && '$PYTHON3' '$check_report' '$tmp/cold.json' >/dev/null &&
        grep -q ': 0 of $files files answered from the store, $files verdicts recorded' '$tmp/cold.err' &&
        [ \"\$(stat -c %a '$tmp/store')\" = 700 ] && [ \"\$(stat -c %a '$tmp/store/verdicts.db')\" = 600 ]"
summ "$tmp/cold.json" >"$tmp/cold.sum"

scan >"$tmp/warm.json" 2>"$tmp/warm.err"; st=$?
summ "$tmp/warm.json" >"$tmp/warm.sum"
check "warm run: every file answered from the store (source=store), JSON passes check-report.py" bash -c "
        [ $st -eq 1 ] && '$PYTHON3' '$check_report' '$tmp/warm.json' >/dev/null &&
        grep -q ': $files of $files files answered from the store, 0 verdicts recorded' '$tmp/warm.err' &&
        [ \"\$(py 'import json,sys; print(json.load(open(sys.argv[1]))[\"source\"])' '$tmp/warm.sum')\" = \"{'store': $files}\" ]" 
check "warm run: the same verdicts, formats and sizes, and the same counts of worst rules" py "
import json, sys
a = json.load(open('$tmp/cold.sum')); b = json.load(open('$tmp/warm.sum'))
sys.exit(not (a['files'] == b['files'] and a['worst'] == b['worst'] and a['worst']))"
check "warm run: a denial has one finding naming the store; globals [] and no license" py "
import json, sys
fs = [f for f in json.load(open('$tmp/warm.json'))['files'] if f['verdict'] == 'deny']
sys.exit(not all(len(f['findings']) == 1 and 'from the store $tmp/store' in f['findings'][0]['message']
                 and f['globals'] == [] and f['license'] is None for f in fs))"
"$M" scan --jobs 2 --store "$tmp/store" "$tmp/tree" >"$tmp/warm.txt" 2>/dev/null
check "warm run, text: the same DENY/ALLOW lines as a scan without the store" bash -c "
        '$M' scan --jobs 2 '$tmp/tree' 2>/dev/null | grep -E ': (ALLOW|DENY) ' | sed 's/, license .*//' >'$tmp/plain.lines'
        grep -E ': (ALLOW|DENY) ' '$tmp/warm.txt' >'$tmp/warm.lines'
        cmp -s '$tmp/plain.lines' '$tmp/warm.lines'"

# ---- what invalidates a stored verdict --------------------------------------------
v=$tmp/tree/victim.pkl
check "the victim pickle is allowed, from the store" bash -c "
        [ \"\$(verdict_of '$tmp/warm.json' '$v')\" = allow ] && [ \"\$(source_of '$tmp/warm.json' '$v')\" = store ]"
touch -r "$v" "$tmp/victim.time"
py "f = open('$v', 'r+b'); f.write(open('$tmp/bad.pkl', 'rb').read()); f.close()"
touch -m -d "@$(stat -c %Y "$tmp/victim.time")" "$v"
scan >"$tmp/rewritten.json" 2>/dev/null
check "rewritten in place, same size, mtime put back: scanned again and denied" bash -c "
        [ \$(stat -c %s '$v') -eq \$(stat -c %s '$tmp/bad.pkl') ] &&
        [ \"\$(source_of '$tmp/rewritten.json' '$v')\" = scan ] && [ \"\$(verdict_of '$tmp/rewritten.json' '$v')\" = deny ]"
check "... and only that file: the others still come from the store" bash -c "
        [ \"\$(py 'import json; print(sum(f[\"source\"] == \"store\" for f in json.load(open(\"$tmp/rewritten.json\"))[\"files\"]))')\" = $((files - 1)) ]"
sleep 3   # let the rewritten file settle, and record its verdict
scan >/dev/null 2>&1
scan >"$tmp/warm2.json" 2>/dev/null
summ "$tmp/warm2.json" >"$tmp/warm2.sum"
check "the rewritten file's new verdict is recorded: deny, from the store" bash -c "
        [ \"\$(source_of '$tmp/warm2.json' '$v')\" = store ] && [ \"\$(verdict_of '$tmp/warm2.json' '$v')\" = deny ]"

printf '{"allow_globals": ["some_package.*"]}\n' >"$tmp/policy.json"
scan --policy "$tmp/policy.json" >"$tmp/other.json" 2>/dev/null
check "another policy: every file scanned again" py "
import json, sys
fs = json.load(open('$tmp/other.json'))['files']
sys.exit(not (len(fs) == $files and all(f['source'] == 'scan' for f in fs)))"
scan >"$tmp/back.json" 2>/dev/null
check "back to the first policy: its verdicts are still there" py "
import json, sys
fs = json.load(open('$tmp/back.json'))['files']
sys.exit(not all(f['source'] == 'store' for f in fs))"

# ---- a damaged store: never a wrong verdict ------------------------------------
# Every record gets the same byte flipped (deny, flags, rule, severity, format,
# policy, inode, size, ctime, hash, checksum), then the store is cut mid-record.
good=$(summ "$tmp/warm2.json" | py "import json, sys; print(json.dumps(json.load(sys.stdin)['files'], sort_keys=True))")
bad_runs=0
for off in 6 7 8 9 10 20 60 68 76 88 100 127 cut; do
        rm -rf "$tmp/dmg" && cp -a "$tmp/store" "$tmp/dmg"
        if [ "$off" = cut ]; then
                truncate -s -50 "$tmp/dmg/verdicts.db"
        else
                py "
d = bytearray(open('$tmp/dmg/verdicts.db', 'rb').read())
for i in range(128, len(d), 128):
    d[i + $off] ^= 0x01
open('$tmp/dmg/verdicts.db', 'wb').write(d)"
        fi
        "$M" scan --jobs 2 --format json --store "$tmp/dmg" "$tmp/tree" >"$tmp/dmg.json" 2>"$tmp/dmg.err"
        got=$(summ "$tmp/dmg.json" | py "import json, sys; print(json.dumps(json.load(sys.stdin)['files'], sort_keys=True))")
        if [ "$got" != "$good" ] || [ "$(verdict_of "$tmp/dmg.json" "$v")" != deny ] || ! grep -q 'damaged record\|torn byte' "$tmp/dmg.err"; then
                echo "# offset $off: wrong verdicts" ; bad_runs=$((bad_runs + 1))
        fi
done
check "a flipped byte at 12 offsets of every record, or a cut store: the same verdicts, the malicious file denied, the damage reported" \
        test $bad_runs -eq 0

# ---- expected hashes, on every run ------------------------------------------------
"$M" scan --jobs 2 --sha256 --store "$tmp/store" "$tmp/tree" >/dev/null 2>&1   # the records get their SHA-256
sha=$(sha256sum "$tmp/tree/org0/model-00000/config.json" | cut -d' ' -f1)
py "import json; json.dump({'root': '$tmp/tree', 'files': {'org0/model-00000/config.json': {'sha256': '$sha'}}}, open('$tmp/right.json', 'w'))"
py "import json; json.dump({'root': '$tmp/tree', 'files': {'org0/model-00000/config.json': {'sha256': '0' * 64}}}, open('$tmp/wrong.json', 'w'))"
scan --manifest "$tmp/right.json" >"$tmp/right.out" 2>/dev/null
scan --manifest "$tmp/wrong.json" >"$tmp/wrong.out" 2>/dev/null
c=$tmp/tree/org0/model-00000/config.json
check "a manifest's hash that the record matches: from the store, allowed; a wrong one: scanned, HASH_MISMATCH" bash -c "
        [ \"\$(source_of '$tmp/right.out' '$c')\" = store ] && [ \"\$(verdict_of '$tmp/right.out' '$c')\" = allow ] &&
        [ \"\$(source_of '$tmp/wrong.out' '$c')\" = scan ] && [ \"\$(verdict_of '$tmp/wrong.out' '$c')\" = deny ] &&
        grep -q HASH_MISMATCH '$tmp/wrong.out'"

# ---- refusals ---------------------------------------------------------------------
mkdir -m 0770 "$tmp/shared"
"$M" scan --store "$tmp/shared" "$tmp/tree" >/dev/null 2>"$tmp/err"; st=$?
check "a store directory others can write: exit 2, the error names DIR" bash -c "
        [ $st -eq 2 ] && grep -qF -- '--store $tmp/shared: refused' '$tmp/err'"
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
        mkdir -m 0700 "$tmp/theirs" && chown nobody "$tmp/theirs"
        "$M" scan --store "$tmp/theirs" "$tmp/tree" >/dev/null 2>"$tmp/err"; st=$?
        check "a store directory of another user: exit 2, the error names DIR" bash -c "
                [ $st -eq 2 ] && grep -qF -- '--store $tmp/theirs: refused: the directory or its verdicts.db belongs to another user' '$tmp/err'"
else
        ok "# SKIP a store of another user needs root to make"
fi
flock -n "$tmp/store" sleep 2 &
holder=$!
sleep 0.5
"$M" scan --store "$tmp/store" "$tmp/tree" >/dev/null 2>"$tmp/err"; st=$?
wait $holder 2>/dev/null
check "a store in use (its lock held): exit 2, the error says so" bash -c "
        [ $st -eq 2 ] && grep -qF -- '--store $tmp/store: in use' '$tmp/err'"
exit $fail
