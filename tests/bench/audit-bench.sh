#!/bin/bash
# audit-bench.sh — part of `make bench`: a mass audit. A tree of 2,000 small
# repositories (20,000 files: pickles, PyTorch zip checkpoints, npy, safetensors,
# GGUF, JSON, text; one repository in seven fails) from tests/audit/make-tree.py,
# scanned with `modelgate scan --jobs 2 --format json`, against two baselines over
# the same files in the same run with the same parallelism: `cat` and `sha256sum`
# through find | xargs -P2. Page cache warm; times are the best of $BENCH_RUNS
# (default 3). Then memory: the front end's peak RSS (VmHWM) and /usr/bin/time's
# maximum RSS (the largest process of the run, a worker or the front end) for
# 2,000 and 20,000 files, which must be flat.
set -euo pipefail
: "${MODELGATE:?set MODELGATE to the modelgate binary}" "${PYTHON3:=python3}"
here=$(cd "$(dirname "$0")" && pwd)
dir=${BENCH_DIR:-/var/tmp/modelgate-bench}/audit
runs=${BENCH_RUNS:-3}
mkdir -p "$dir"
for n in 200 2000; do
        [ -f "$dir/tree-$n.expect" ] && continue
        rm -rf "$dir/tree-$n"
        "$PYTHON3" "$here/../audit/make-tree.py" "$dir/tree-$n" --repos $n >"$dir/tree-$n.tmp"
        mv "$dir/tree-$n.tmp" "$dir/tree-$n.expect"
done
tree=$dir/tree-2000
files=$(find "$tree" -type f | wc -l)
bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
find "$tree" -type f -print0 | xargs -0 cat >/dev/null   # warm the page cache

best_of() {   # prints seconds, best of $runs runs of "$@"
        local best= t0 t1
        for _ in $(seq "$runs"); do
                t0=$(date +%s.%N)
                "$@" >/dev/null 2>&1 || true
                t1=$(date +%s.%N)
                best=$(echo "$t0 $t1 $best" | awk '{d=$2-$1; if ($3=="" || d<$3) print d; else print $3}')
        done
        echo "$best"
}
scan() { "$MODELGATE" scan --jobs 2 --format json "$tree"; }
via_xargs() { find "$tree" -type f -print0 | xargs -0 -P2 -n 256 "$@"; }

t_mg=$(best_of scan)
t_cat=$(best_of via_xargs cat)
t_sha=$(best_of via_xargs sha256sum)
rate() { awk -v n="$1" -v t="$2" 'BEGIN {printf "%.0f", n / t}'; }
mbs() { awk -v n="$1" -v t="$2" 'BEGIN {printf "%.1f", n / 1e6 / t}'; }
printf 'audit tree: %d files, %.1f MB in 2000 repositories\n' "$files" "$(awk -v b="$bytes" 'BEGIN {print b / 1e6}')"
printf '  modelgate scan --jobs 2: %.2f s = %s files/s, %s MB/s\n' "$t_mg" "$(rate "$files" "$t_mg")" "$(mbs "$bytes" "$t_mg")"
printf '  find|xargs -P2 cat:       %.2f s = %s files/s, %s MB/s (modelgate takes %.1fx its time)\n' \
        "$t_cat" "$(rate "$files" "$t_cat")" "$(mbs "$bytes" "$t_cat")" "$(awk -v a="$t_mg" -v b="$t_cat" 'BEGIN {print a / b}')"
printf '  find|xargs -P2 sha256sum: %.2f s = %s files/s, %s MB/s (modelgate takes %.1fx its time)\n' \
        "$t_sha" "$(rate "$files" "$t_sha")" "$(mbs "$bytes" "$t_sha")" "$(awk -v a="$t_mg" -v b="$t_sha" 'BEGIN {print a / b}')"

# Memory: must not grow with the number of files.
hwm() {   # the front end's VmHWM in kB, sampled until it exits
        "$MODELGATE" scan --jobs 2 --format json "$1" >/dev/null 2>&1 &
        local p=$! last=0 v
        while kill -0 $p 2>/dev/null; do
                v=$(awk '/^VmHWM/ {print $2}' /proc/$p/status 2>/dev/null || true)
                [ -n "$v" ] && last=$v
                sleep 0.02
        done
        wait $p || true
        echo "$last"
}
for n in 200 2000; do
        t=$dir/tree-$n
        max=-
        if [ -x /usr/bin/time ]; then
                /usr/bin/time -v -o "$dir/time.out" "$MODELGATE" scan --jobs 2 --format json "$t" >/dev/null 2>&1 || true
                max=$(
                        awk -F": " "/Maximum resident/ {print \$2}" "$dir/time.out")
        fi
        printf '  memory, %d files: front end peak RSS %s kB; largest process (time -v) %s kB\n' \
                "$(find "$t" -type f | wc -l)" "$(hwm "$t")" "$max"
done
