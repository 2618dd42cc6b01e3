#!/bin/bash
# audit-bench.sh — part of `make bench`: a mass audit. A tree of 2,000 small
# repositories (20,000 files: pickles, PyTorch zip checkpoints, npy, safetensors,
# GGUF, JSON, text; one repository in seven fails) from tests/audit/make-tree.py,
# scanned with `modelgate scan --jobs 2 --format json`, against two baselines over
# the same files in the same run with the same parallelism: `cat` and `sha256sum`
# through find | xargs -P2. Page cache warm; times are the best of $BENCH_RUNS
# (default 3). Then `--store DIR` over the same tree: cold (every run starts with
# an empty store: scan and record each file) and warm (a store filled by one
# earlier run: every file answered from it), against the plain run. Then memory: the front end's peak RSS (VmHWM) and /usr/bin/time's
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
        sleep 3   # --store records only files whose ctime is 2 s old
done
tree=$dir/tree-2000
files=$(find "$tree" -type f | wc -l)
bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
find "$tree" -type f -print0 | xargs -0 cat >/dev/null   # warm the page cache

best_of() {   # prints "wall-seconds cpu-seconds" of the fastest of $runs runs of "$@" (cpu: user+sys, children included)
        local best= _ out=$dir/time.out
        for _ in $(seq "$runs"); do
                /usr/bin/time -f '%e %U %S' -o "$out" bash -c '"$@" >/dev/null 2>&1 || true' _ "$@"
                best=$(awk -v b="$best" '{w=$1; c=$2+$3} END {split(b, x, " "); if (b=="" || w<x[1]) print w, c; else print b}' "$out")
        done
        echo "$best"
}
scan() { "$MODELGATE" scan --jobs 2 --format json "$tree"; }
scan_store_cold() { rm -rf "$dir/store-cold"; "$MODELGATE" scan --jobs 2 --format json --store "$dir/store-cold" "$tree"; }
scan_store_warm() { "$MODELGATE" scan --jobs 2 --format json --store "$dir/store-warm" "$tree"; }
via_xargs() { find "$tree" -type f -print0 | xargs -0 -P2 -n 256 "$@"; }
export -f scan scan_store_cold scan_store_warm via_xargs
export MODELGATE tree dir

read -r t_mg c_mg < <(best_of scan)
read -r t_cold c_cold < <(best_of scan_store_cold)
rm -rf "$dir/store-warm"
"$MODELGATE" scan --jobs 2 --format json --store "$dir/store-warm" "$tree" >/dev/null 2>&1 || true
hits=$("$MODELGATE" scan --jobs 2 --format json --store "$dir/store-warm" "$tree" 2>&1 >/dev/null |
        sed -n 's/.*: \([0-9]*\) of [0-9]* files\{0,1\} answered from the store.*/\1/p' || true)
read -r t_warm c_warm < <(best_of scan_store_warm)
read -r t_cat c_cat < <(best_of via_xargs cat)
read -r t_sha c_sha < <(best_of via_xargs sha256sum)
rate() { awk -v n="$1" -v t="$2" 'BEGIN {printf "%.0f", n / t}'; }
mbs() { awk -v n="$1" -v t="$2" 'BEGIN {printf "%.1f", n / 1e6 / t}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
printf 'audit tree: %d files, %.1f MB in 2000 repositories (load average %s)\n' "$files" \
        "$(awk -v b="$bytes" 'BEGIN {print b / 1e6}')" "$(cut -d' ' -f1 /proc/loadavg)"
printf '  modelgate scan --jobs 2: %.2f s = %s files/s, %s MB/s; %.2f CPU s\n' \
        "$t_mg" "$(rate "$files" "$t_mg")" "$(mbs "$bytes" "$t_mg")" "$c_mg"
printf '  --jobs 2 --store, cold:  %.2f s = %s files/s; %.2f CPU s (%sx the plain run'"'"'s files/s)\n' \
        "$t_cold" "$(rate "$files" "$t_cold")" "$c_cold" "$(ratio "$t_mg" "$t_cold")"
printf '  --jobs 2 --store, warm:  %.2f s = %s files/s; %.2f CPU s (%sx the plain run'"'"'s files/s; %s files from the store)\n' \
        "$t_warm" "$(rate "$files" "$t_warm")" "$c_warm" "$(ratio "$t_mg" "$t_warm")" "$hits"
printf '  find|xargs -P2 cat:       %.2f s = %s files/s, %s MB/s; %.2f CPU s (modelgate: %sx its time, %sx its CPU)\n' \
        "$t_cat" "$(rate "$files" "$t_cat")" "$(mbs "$bytes" "$t_cat")" "$c_cat" "$(ratio "$t_mg" "$t_cat")" "$(ratio "$c_mg" "$c_cat")"
printf '  find|xargs -P2 sha256sum: %.2f s = %s files/s, %s MB/s; %.2f CPU s (modelgate: %sx its time, %sx its CPU)\n' \
        "$t_sha" "$(rate "$files" "$t_sha")" "$(mbs "$bytes" "$t_sha")" "$c_sha" "$(ratio "$t_mg" "$t_sha")" "$(ratio "$c_mg" "$c_sha")"

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
