#!/bin/bash
# cli.sh — `modelgate scan` as a user runs it: exit codes, the four output formats
# (JSON checked by check-report.py), error messages naming the file, odd inputs in
# a tree, deterministic order under --jobs. Each case runs modelgate afresh.
set -u
. "${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/tap.sh"
: "${MODELGATE:?}" "${PYTHON3:=python3}"
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
check_report=$srcdir/../shared/tools/check-report.py
[ -f "$check_report" ] || check_report=$srcdir/tests/check-report.py

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A raw protocol-2 pickle that calls os.system("true"), and a benign one.
evil=$tmp/tree/evil.pkl
mkdir -p "$tmp/tree/sub"
printf '\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R.' > "$evil"
printf '\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s.' > "$tmp/tree/sub/clean.pkl"
printf 'This is a README.\n' > "$tmp/tree/README.md"

echo "1..22"

"$MODELGATE" scan >/dev/null 2>"$tmp/err"; st=$?
check "no PATH is a usage error (exit 2)" test $st -eq 2
"$MODELGATE" scan --format yaml "$tmp/tree" >/dev/null 2>"$tmp/err"; st=$?
check "unknown --format is a usage error naming it" bash -c "[ $st -eq 2 ] && grep -q 'yaml' '$tmp/err'"
"$MODELGATE" scan --jobs 0 "$tmp/tree" >/dev/null 2>"$tmp/err"; st=$?
check "--jobs 0 is a usage error" test $st -eq 2

printf '{"fail_severity": "severe"}' > "$tmp/bad-policy.json"
"$MODELGATE" scan --policy "$tmp/bad-policy.json" "$tmp/tree" >/dev/null 2>"$tmp/err"; st=$?
check "invalid policy exits 2 naming file and key" \
        bash -c "[ $st -eq 2 ] && grep -q 'bad-policy.json' '$tmp/err' && grep -q 'fail_severity' '$tmp/err'"

"$MODELGATE" scan "$tmp/tree/sub" >"$tmp/out" 2>&1; st=$?
check "a clean pickle exits 0" test $st -eq 0
check "text output has an ALLOW line for it" grep -q "clean.pkl: ALLOW pickle" "$tmp/out"

"$MODELGATE" scan "$evil" >"$tmp/out" 2>&1; st=$?
check "a malicious pickle exits 1" test $st -eq 1
check "text finding line is 'path: CRITICAL UNSAFE_IMPORT: os:system (via GLOBAL)'" \
        grep -qxF "$evil: CRITICAL UNSAFE_IMPORT: os:system (via GLOBAL)" "$tmp/out"

"$MODELGATE" scan --format json "$tmp/tree" >"$tmp/report.json" 2>/dev/null; st=$?
check "JSON report of the tree passes check-report.py" \
        bash -c "[ $st -eq 1 ] && '$PYTHON3' '$check_report' '$tmp/report.json' >/dev/null"
check "JSON lists three files, one denied" \
        "$PYTHON3" -c "import json,sys; d=json.load(open('$tmp/report.json')); s=d['summary']; sys.exit(not (s['files']==3 and s['denied']==1 and s['by_rule'].get('UNSAFE_IMPORT')==1))"

"$MODELGATE" scan --format sarif "$tmp/tree" >"$tmp/out.sarif" 2>/dev/null
check "SARIF is 2.1.0 with one error result for os:system" \
        "$PYTHON3" -c "import json,sys; d=json.load(open('$tmp/out.sarif')); r=d['runs'][0]['results']; sys.exit(not (d['version']=='2.1.0' and len(r)==1 and r[0]['ruleId']=='UNSAFE_IMPORT' and r[0]['level']=='error' and r[0]['properties']['global']=='os:system'))"

"$MODELGATE" scan --format csv "$tmp/tree" >"$tmp/out.csv" 2>/dev/null
check "CSV has the documented header and one row per file here" \
        "$PYTHON3" -c "import csv,sys; rows=list(csv.reader(open('$tmp/out.csv', newline=''))); sys.exit(not (rows[0]==['path','repository','verdict','format','size','sha256','license','rule','severity','global','via','member','message'] and len(rows)==4))"

"$MODELGATE" scan "$tmp/does-not-exist" "$tmp/tree/sub" >"$tmp/out" 2>"$tmp/err"; st=$?
check "a missing path exits 2, names it, and the rest is scanned" \
        bash -c "[ $st -eq 2 ] && grep -q 'does-not-exist' '$tmp/err' && grep -q 'clean.pkl: ALLOW' '$tmp/out'"

mkdir -p "$tmp/odd"
cp "$tmp/tree/sub/clean.pkl" "$tmp/odd/good.pkl"
ln -s "$tmp/nowhere" "$tmp/odd/dangling.bin"
mkfifo "$tmp/odd/fifo.bin"
ln -s "$tmp/odd" "$tmp/odd/loop"
"$MODELGATE" scan --format json "$tmp/odd" >"$tmp/odd.json" 2>"$tmp/err"; st=$?
check "a dangling symlink is an error naming it (exit 2)" \
        bash -c "[ $st -eq 2 ] && grep -q 'dangling.bin: dangling symbolic link' '$tmp/err'"
check "a FIFO in a tree is skipped with a note, not opened" grep -q 'fifo.bin: skipped: a FIFO' "$tmp/err"
check "a symlink to a directory is not followed" grep -q 'loop: skipped: symbolic link to a directory' "$tmp/err"
check "the good file in that tree is still reported" \
        "$PYTHON3" -c "import json,sys; d=json.load(open('$tmp/odd.json')); sys.exit(not any(f['path'].endswith('good.pkl') and f['verdict']=='allow' for f in d['files']))"

# Names with a newline and invalid UTF-8 are escaped in every format.
mkdir -p "$tmp/names"
cp "$evil" "$tmp/names/$(printf 'new\nline\xff.pkl')"
"$MODELGATE" scan "$tmp/names" >"$tmp/out" 2>/dev/null
check "text output escapes newline and invalid UTF-8 in names" grep -qF 'new\x0aline\xff.pkl: DENY pickle' "$tmp/out"
"$MODELGATE" scan --format json "$tmp/names" >"$tmp/names.json" 2>/dev/null
check "JSON with an odd name is valid and passes check-report.py" \
        bash -c "'$PYTHON3' '$check_report' '$tmp/names.json' >/dev/null"
"$MODELGATE" scan --format csv "$tmp/names" >"$tmp/names.csv" 2>/dev/null
check "CSV with an odd name keeps one record per row" \
        "$PYTHON3" -c "import csv,sys; rows=list(csv.reader(open('$tmp/names.csv', newline='', encoding='utf-8'))); sys.exit(not (len(rows)==2 and 'new\\\\x0aline' in rows[1][0]))"

# Output order does not depend on parallelism.
for i in $(seq 1 30); do cp "$tmp/tree/sub/clean.pkl" "$tmp/tree/sub/c$i.pkl"; cp "$evil" "$tmp/tree/e$i.pkl"; done
"$MODELGATE" scan --jobs 1 --format json "$tmp/tree" >"$tmp/j1.json" 2>/dev/null
"$MODELGATE" scan --jobs 4 --format json "$tmp/tree" >"$tmp/j4.json" 2>/dev/null
check "--jobs 1 and --jobs 4 give identical reports" cmp -s "$tmp/j1.json" "$tmp/j4.json"

"$MODELGATE" --version >"$tmp/out" 2>&1
check "--version prints the version" grep -q '^modelgate [0-9]' "$tmp/out"

exit $fail
