#!/bin/bash
# audit.sh — `modelgate scan` over many repositories as an auditor runs it: the
# progress line, the summary's counts and percentages, repositories (Hugging Face
# cache and org/name layouts), CSV as a dataset, --shard and `report merge`
# (byte-identical to one machine's run, and refusals), and SIGINT/SIGTERM partial
# reports. Trees come from tests/audit/make-tree.py, which says what a scan of
# them must find.
set -u
. "${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/tap.sh"
: "${MODELGATE:?}" "${PYTHON3:=python3}"
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
check_report=$srcdir/../shared/tools/check-report.py
[ -f "$check_report" ] || check_report=$srcdir/tests/check-report.py
gen=$srcdir/tests/audit/make-tree.py
M=$MODELGATE

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/audit-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py() { "$PYTHON3" -c "$@"; }

"$PYTHON3" "$gen" "$tmp/mirror" --repos 60 >"$tmp/expect.json" || skip "cannot generate the test tree"
"$PYTHON3" "$gen" "$tmp/hub" --repos 12 --layout hf >"$tmp/hub-expect.json" || skip "cannot generate the test tree"

echo "1..43"

# ---- progress ---------------------------------------------------------------
"$M" scan --progress --jobs 2 "$tmp/mirror" >/dev/null 2>"$tmp/err"
line=$(py "import json; e=json.load(open('$tmp/expect.json')); print('%d/%d files (100%%), %.1f MB/%.1f MB, %d allowed, %d denied, ' % (e['files'], e['files'], e['bytes']/1e6, e['bytes']/1e6, e['files']-e['denied'], e['denied']))")
check "--progress draws files done/total, bytes, allowed/denied, rates and ETA on stderr" \
        bash -c "grep -qaF '$line' '$tmp/err' && grep -qaE ' denied, [0-9]+ files/s, [0-9.]+ MB/s, ETA [0-9]+:[0-9]{2}' '$tmp/err'"
check "the progress line is cleared at the end" py "import sys; d=open('$tmp/err','rb').read(); sys.exit(not d.endswith(b'\r\x1b[K'))"
"$M" scan --jobs 2 "$tmp/mirror" >/dev/null 2>"$tmp/err"
check "no progress line when standard error is not a terminal" test ! -s "$tmp/err"
if command -v script >/dev/null; then
        script -qec "'$M' scan --jobs 2 '$tmp/mirror' >/dev/null" /dev/null >"$tmp/tty" 2>&1
        check "a progress line on a terminal (script(1) pty)" grep -qa 'files/s' "$tmp/tty"
        script -qec "'$M' scan --no-progress --jobs 2 '$tmp/mirror' >/dev/null" /dev/null >"$tmp/tty" 2>&1
        check "--no-progress: none on a terminal" bash -c "! grep -qa 'files/s' '$tmp/tty'"
        script -qec "'$M' scan --quiet --jobs 2 '$tmp/mirror' >/dev/null" /dev/null >"$tmp/tty" 2>&1
        check "--quiet: none on a terminal" bash -c "! grep -qa 'files/s' '$tmp/tty'"
else
        ok "# SKIP script(1) not installed"; ok "# SKIP script(1) not installed"; ok "# SKIP script(1) not installed"
fi

# ---- summary --------------------------------------------------------------------
"$M" scan --jobs 2 --format json "$tmp/mirror" >"$tmp/full.json" 2>/dev/null; st=$?
check "JSON of the tree passes check-report.py (exit 1: denials)" \
        bash -c "[ $st -eq 1 ] && '$PYTHON3' '$check_report' '$tmp/full.json' >/dev/null"
check "summary: files, denied, repositories and failures by rule with percent of failed files as generated" py "
import json, sys
d = json.load(open('$tmp/full.json'))['summary']; e = json.load(open('$tmp/expect.json'))
want = {r: {'files': n, 'percent': ((1000 * n + e['denied'] // 2) // e['denied']) / 10} for r, n in e['failed_by_rule'].items()}
sys.exit(not (d['files'] == e['files'] and d['denied'] == e['denied'] and d['repositories'] == e['repositories']
              and d['failures_by_rule'] == want and d['interrupted'] is False and d['tables_capped'] is False))"
check "summary: top globals and licenses among failures, counted in files" py "
import json, sys
d = json.load(open('$tmp/full.json'))['summary']; e = json.load(open('$tmp/expect.json'))
g = sorted(e['globals'].items(), key=lambda x: (-x[1], x[0]))
sys.exit(not (d['top_globals'] == [{'global': k, 'files': n} for k, n in g]
              and d['licenses'] == [{'license': k, 'files': n, 'restricted': True} for k, n in e['licenses'].items()]))"
"$M" scan --jobs 2 "$tmp/mirror" >"$tmp/full.txt" 2>/dev/null
check "text summary: rule counts with '(N.N% of failures)'" py "
import json, sys
e = json.load(open('$tmp/expect.json')); t = open('$tmp/full.txt').read()
sys.exit(not all('  %s %d (%.1f%% of failures)\n' % (r, n, 100 * n / e['denied']) in t for r, n in e['failed_by_rule'].items()))"
check "text summary: repositories, top globals, restricted licenses" \
        bash -c "grep -qx '60 repositories scanned' '$tmp/full.txt' && grep -qx '  posix:system [0-9]*' '$tmp/full.txt' && grep -qx '  cc-by-nc-4.0 [0-9]* (restricted)' '$tmp/full.txt'"

# ---- repositories -------------------------------------------------------------
mkdir -p "$tmp/hub/models--solo/blobs" "$tmp/hub/datasets--acme--set/snapshots/r1" "$tmp/hub/models--acme--set/blobs" \
        "$tmp/hub/spaces--acme--set/blobs"
printf 'x\n' >"$tmp/hub/models--solo/blobs/readme"
printf 'y\n' >"$tmp/hub/datasets--acme--set/snapshots/r1/data.txt"
printf 'm\n' >"$tmp/hub/models--acme--set/blobs/m"
printf 's\n' >"$tmp/hub/spaces--acme--set/blobs/s"
"$M" scan --format json "$tmp/hub" >"$tmp/hub.json" 2>/dev/null
check "Hugging Face cache: models--ORG--NAME/snapshots/REV/FILE belongs to ORG/NAME" py "
import json, re, sys
fs = json.load(open('$tmp/hub.json'))['files']
m = [f for f in fs if '/models--org' in f['path']]
sys.exit(not (len(m) == 120 and all(f['repository'] == re.search(r'models--(org\d+)--(model-\d+)/', f['path']).expand(r'\1/\2') for f in m)))"
check "Hugging Face cache: a repository without an organisation; a dataset and a space named like a model are three repositories (datasets/ORG/NAME, spaces/ORG/NAME)" py "
import json, sys
r = {f['path'].split('/hub/')[1]: f['repository'] for f in json.load(open('$tmp/hub.json'))['files']}
sys.exit(not (r['models--solo/blobs/readme'] == 'solo' and r['datasets--acme--set/snapshots/r1/data.txt'] == 'datasets/acme/set'
              and r['models--acme--set/blobs/m'] == 'acme/set' and r['spaces--acme--set/blobs/s'] == 'spaces/acme/set'))"
mkdir -p "$tmp/mirror/orgonly"
printf 'z\n' >"$tmp/mirror/orgonly/file.txt"
printf 'z\n' >"$tmp/mirror/top.txt"
"$M" scan --format json "$tmp/mirror" >"$tmp/layout.json" 2>/dev/null
check "org/name layout: ROOT/ORG/NAME/... belongs to ORG/NAME; less deep, to none" py "
import json, sys
fs = json.load(open('$tmp/layout.json'))['files']; root = '$tmp/mirror/'
ok = all(f['repository'] == ('/'.join(f['path'][len(root):].split('/')[:2]) if f['path'][len(root):].count('/') >= 2 else None) for f in fs)
sys.exit(not (ok and sum(f['repository'] is None for f in fs) == 2))"
"$M" scan --format json "$tmp/mirror/org3" >"$tmp/sub.json" 2>/dev/null
check "the org/name rule counts from the PATH given" py "
import json, sys
fs = json.load(open('$tmp/sub.json'))['files']
sys.exit(not (fs and all(f['repository'] is None for f in fs)))"
rm -f "$tmp/mirror/orgonly/file.txt" "$tmp/mirror/top.txt"; rmdir "$tmp/mirror/orgonly"

# ---- CSV ------------------------------------------------------------------------
"$M" scan --jobs 2 --format csv "$tmp/mirror" >"$tmp/full.csv" 2>/dev/null
check "CSV: header, and one row per finding (one for a file without) as in the JSON" py "
import csv, json, sys
rows = list(csv.DictReader(open('$tmp/full.csv', newline='')))
fs = json.load(open('$tmp/full.json'))['files']
cols = 'path,repository,verdict,format,size,sha256,license,rule,severity,global,via,member,message'.split(',')
want = [(f['path'], f['repository'] or '', x['rule'] if x else '', (x or {}).get('global') or '') for f in fs for x in (f['findings'] or [None])]
got = [(r['path'], r['repository'], r['rule'], r['global']) for r in rows]
sys.exit(not (list(rows[0].keys()) == cols and got == want))"

mkdir "$tmp/inj"
printf 'cos\nsystem\n(S"x"\ntR.' >"$tmp/inj/=HYPERLINK(1).pkl"
printf '\x80\x02c@evil\nrun\n)R.' >"$tmp/inj/-a,b.pkl"
(cd "$tmp/inj" && "$M" scan --format csv -- "=HYPERLINK(1).pkl" "-a,b.pkl" >"$tmp/inj.csv" 2>/dev/null)
check "CSV: a field a spreadsheet would run (= + - @ first) starts with that byte's \\xNN escape instead" py "
import csv, re, sys
rows = list(csv.DictReader(open('$tmp/inj.csv', newline='')))
cells = [v for r in rows for v in r.values()]
unesc = lambda v: re.sub(r'\\\\x([0-9a-f]{2})', lambda m: chr(int(m.group(1), 16)), v)
paths = sorted({unesc(r['path']) for r in rows})
globs = {unesc(r['global']) for r in rows}
sys.exit(not (rows and all(not c or c[0] not in '=+-@' for c in cells) and paths == ['-a,b.pkl', '=HYPERLINK(1).pkl']
              and {'os:system', '@evil:run'} <= globs))"
rm -rf "$tmp/inj"

# ---- shards and merge -------------------------------------------------------------
for i in 1 2 3; do "$M" scan --jobs 2 --format json --shard $i/3 "$tmp/mirror" >"$tmp/s$i.json" 2>/dev/null; done
check "shards 1/3..3/3: union equals the unsharded run, no file twice, none empty" py "
import json, sys
full = [f['path'] for f in json.load(open('$tmp/full.json'))['files']]
parts = [[f['path'] for f in json.load(open('$tmp/s%d.json' % i))['files']] for i in (1, 2, 3)]
allp = sum(parts, [])
sys.exit(not (sorted(allp) == sorted(full) and len(set(allp)) == len(allp) and all(parts)))"
check "a repository is never split across shards" py "
import json, sys
seen = {}
for i in (1, 2, 3):
    for f in json.load(open('$tmp/s%d.json' % i))['files']:
        if seen.setdefault(f['repository'], i) != i: sys.exit(1)"
check "a shard report records its shard and roots, and passes check-report.py" \
        bash -c "'$PYTHON3' '$check_report' '$tmp/s2.json' >/dev/null && '$PYTHON3' -c \"import json,sys; d=json.load(open('$tmp/s2.json')); sys.exit(not (d['shard']=={'index':2,'count':3} and d['roots']==['$tmp/mirror']))\""
"$M" report merge "$tmp/s3.json" "$tmp/s1.json" "$tmp/s2.json" >"$tmp/merged.json" 2>"$tmp/err"; st=$?
check "report merge of 3 shards (any order) is byte-identical to one --format json run" \
        bash -c "[ $st -eq 1 ] && cmp -s '$tmp/full.json' '$tmp/merged.json'"
"$M" report merge --format text "$tmp/s2.json" "$tmp/s1.json" "$tmp/s3.json" >"$tmp/merged.txt" 2>/dev/null
check "report merge --format text is identical to one run's text output" cmp -s "$tmp/full.txt" "$tmp/merged.txt"
"$M" scan --jobs 2 --format sarif "$tmp/mirror" >"$tmp/full.sarif" 2>/dev/null
"$M" report merge --format sarif -o "$tmp/merged.sarif" "$tmp/s1.json" "$tmp/s2.json" "$tmp/s3.json" 2>/dev/null
"$M" report merge --format csv "$tmp/s1.json" "$tmp/s2.json" "$tmp/s3.json" >"$tmp/merged.csv" 2>/dev/null
check "report merge -o FILE, SARIF and CSV: identical to one run's" \
        bash -c "cmp -s '$tmp/full.sarif' '$tmp/merged.sarif' && cmp -s '$tmp/full.csv' '$tmp/merged.csv'"

# Walk order is by name at each level: "a/x" before "a-b", whichever shard has them.
mkdir -p "$tmp/order/a" "$tmp/order/a-b" "$tmp/order2"
for nm in a/x a/y a-b/z a.c aa; do printf "%s\n" "$nm" >"$tmp/order/$nm"; done
printf 'q\n' >"$tmp/order2/q"
"$M" scan --format json "$tmp/order2" "$tmp/order" >"$tmp/o.json" 2>/dev/null
for i in 1 2 3 4; do "$M" scan --format json --shard $i/4 "$tmp/order2" "$tmp/order" >"$tmp/o$i.json" 2>/dev/null; done
"$M" report merge "$tmp/o1.json" "$tmp/o2.json" "$tmp/o3.json" "$tmp/o4.json" >"$tmp/om.json" 2>/dev/null
check "merge keeps PATH order and the walk's per-directory order ('a/x' before 'a-b')" cmp -s "$tmp/o.json" "$tmp/om.json"
mkdir -p "$tmp/e/org/repo" "$tmp/e/org/other"
echo text >"$tmp/e/org/repo/README.md"; echo text >"$tmp/e/org/other/README.md"
ln -s nowhere "$tmp/e/org/repo/dangling"; ln -s nowhere "$tmp/e/org/other/dangling"
"$M" scan --format json "$tmp/e" >"$tmp/e.json" 2>/dev/null
n_err=0
for i in 1 2 3; do
        "$M" scan --format json --shard $i/3 "$tmp/e" >"$tmp/e$i.json" 2>"$tmp/e$i.err"
        n_err=$((n_err + $(grep -c "dangling symbolic link" "$tmp/e$i.err")))
done
"$M" report merge "$tmp/e1.json" "$tmp/e2.json" "$tmp/e3.json" >"$tmp/em.json" 2>/dev/null
check "an input that cannot be read is named and listed by one shard only; merged, as one run" \
        bash -c "[ $n_err -eq 2 ] && cmp -s '$tmp/e.json' '$tmp/em.json'"

refuse() {   # name, expected text in the message, then the reports
        local name=$1 want=$2; shift 2
        "$M" report merge "$@" >/dev/null 2>"$tmp/err"; local st=$?
        if [ $st -eq 2 ] && grep -q -- "$want" "$tmp/err"; then ok "$name"; else not_ok "$name"; diag <"$tmp/err"; fi
}
refuse "merge refuses a missing shard" "shard 2/3 is missing" "$tmp/s1.json" "$tmp/s3.json"
refuse "merge refuses a shard given twice, naming both files" "s1.json: shard 1/3 again (also in $tmp/s1.json)" "$tmp/s1.json" "$tmp/s1.json" "$tmp/s2.json" "$tmp/s3.json"
echo '{"fail_severity":"critical"}' >"$tmp/policy.json"
"$M" scan --format json --shard 2/3 --policy "$tmp/policy.json" "$tmp/mirror" >"$tmp/p2.json" 2>/dev/null
refuse "merge refuses a report made under another policy" "p2.json: scanned under another policy" "$tmp/s1.json" "$tmp/p2.json" "$tmp/s3.json"
"$M" scan --format json --shard 2/3 "$tmp/mirror/" >"$tmp/r2.json" 2>/dev/null
refuse "merge refuses a report of other roots" "r2.json: scanned other PATHs" "$tmp/s1.json" "$tmp/r2.json" "$tmp/s3.json"
py "import json; d=json.load(open('$tmp/s2.json')); d['version']='0.0.9'; json.dump(d, open('$tmp/v2.json','w'))"
refuse "merge refuses a report of another modelgate version" "v2.json: written by modelgate 0.0.9" "$tmp/s1.json" "$tmp/v2.json" "$tmp/s3.json"
py "import json; a=json.load(open('$tmp/s1.json')); d=json.load(open('$tmp/s2.json')); d['files'].append(a['files'][0]); json.dump(d, open('$tmp/d2.json','w'))"
refuse "merge refuses a file listed in two shards" "is listed twice" "$tmp/s1.json" "$tmp/d2.json" "$tmp/s3.json"
for esc in '\x 4' '\x-1' '\x4' '\xg0'; do   # not two hex digits (sscanf's %2x took the first two)
        py "import json,sys; d=json.load(open('$tmp/s2.json')); d['files'][0]['path'] += sys.argv[1]; json.dump(d, open('$tmp/x2.json','w'))" "$esc"
        refuse "merge refuses a path whose escape '$esc' is not \\x and two hex digits" "x2.json: files\[0\]: a path is not an escaped path" "$tmp/s1.json" "$tmp/x2.json" "$tmp/s3.json"
done
head -c 2000 "$tmp/s2.json" >"$tmp/t2.json"
refuse "merge refuses a cut-short (invalid JSON) report, naming it" "t2.json: not valid JSON" "$tmp/s1.json" "$tmp/t2.json" "$tmp/s3.json"
refuse "merge refuses a report that is not a shard's" "full.json: no \"shard\"" "$tmp/full.json"
"$M" scan --shard 0/3 "$tmp/mirror" >/dev/null 2>"$tmp/err"; a=$?
"$M" scan --shard 4/3 "$tmp/mirror" >/dev/null 2>>"$tmp/err"; b=$?
"$M" scan --shard 2 "$tmp/mirror" >/dev/null 2>>"$tmp/err"; c=$?
check "--shard 0/3, 4/3 and 2 are usage errors naming the argument" \
        bash -c "[ $a$b$c = 222 ] && grep -q -- '--shard 0/3: the shard I must be from 1 to N' '$tmp/err' && grep -q -- '--shard 4/3' '$tmp/err' && grep -q -- '--shard 2: expected I/N' '$tmp/err'"

# ---- SIGINT / SIGTERM -------------------------------------------------------------
"$PYTHON3" "$gen" "$tmp/big" --repos 1000 >/dev/null
total=10000
interrupt() {   # out, format, signals...: starts a scan, signals it once output has begun; prints the exit status
        local out=$1 fmt=$2; shift 2
        "$M" scan --jobs 1 --format "$fmt" "$tmp/big" >"$out" 2>"$out.err" &
        local pid=$! i
        for i in $(seq 200); do [ -s "$out" ] && break; sleep 0.05; done
        for sig in "$@"; do kill -"$sig" $pid 2>/dev/null; sleep 0.02; done
        wait $pid
        echo $?
}
st=$(interrupt "$tmp/int.json" json INT)
check "SIGINT: exit 130, and the partial JSON passes check-report.py" \
        bash -c "[ $st -eq 130 ] && '$PYTHON3' '$check_report' '$tmp/int.json' >/dev/null"
check "SIGINT: summary says interrupted, and fewer files than the tree holds are listed" py "
import json, sys
d = json.load(open('$tmp/int.json')); s = d['summary']
sys.exit(not (s['interrupted'] is True and 0 < len(d['files']) == s['files'] < $total
              and not any(x['rule'] == 'SCAN_ERROR' for f in d['files'] for x in f['findings'])))"
st=$(interrupt "$tmp/int.txt" text TERM)
check "SIGTERM: exit 143, text output ends saying it was interrupted" \
        bash -c "[ $st -eq 143 ] && tail -1 '$tmp/int.txt' | grep -q '^Interrupted: the scan was stopped early'"
# A file still in flight: 64 GB of holes hashed (--sha256) takes far longer than the
# grace period, whatever the machine.
mkdir -p "$tmp/slow"
printf 'hi\n' >"$tmp/slow/a.txt"
if truncate -s 64G "$tmp/slow/b.bin" 2>/dev/null; then
        slow_stop() {   # signals...: prints "status milliseconds-from-first-signal"
                "$M" scan --jobs 1 --sha256 --format json "$tmp/slow" >"$tmp/slow.json" 2>/dev/null &
                local pid=$! t0 t1 sig
                sleep 0.5
                t0=$(date +%s%N)
                for sig in "$@"; do kill -"$sig" $pid 2>/dev/null; sleep 0.05; done
                wait $pid
                local st=$?
                t1=$(date +%s%N)
                echo "$st $(( (t1 - t0) / 1000000 ))"
        }
        read -r st ms < <(slow_stop INT)
        check "SIGINT with a file in flight: its worker gets ~2 s, then is killed; the file is left out (exit 130)" \
                bash -c "[ $st -eq 130 ] && [ $ms -ge 1500 ] && [ $ms -lt 8000 ] && '$PYTHON3' -c \"import json,sys; d=json.load(open('$tmp/slow.json')); sys.exit(not ([f['path'] for f in d['files']]==['$tmp/slow/a.txt'] and d['summary']['interrupted']))\""
        read -r st ms < <(slow_stop INT INT)
        check "a second SIGINT ends it at once (exit 130), the JSON still closed and valid" \
                bash -c "[ $st -eq 130 ] && [ $ms -lt 1500 ] && '$PYTHON3' '$check_report' '$tmp/slow.json' >/dev/null"
        rm -f "$tmp/slow/b.bin"
else
        ok "# SKIP cannot make a sparse file here"; ok "# SKIP cannot make a sparse file here"
fi

exit $fail
