#!/bin/bash
# run.sh — `make bench`: scanner speed, measured in one run on the same files.
#  1. pickle VM throughput on a many-small-opcodes pickle, against Python's
#     pickletools.genops walking the same bytes (ratio);
#  2. throughput on a ~250 MB legacy torch file and a ~250 MB joblib file;
#  3. time to decide a 100 MB and a 2 GB torch zip (must not grow with tensor data);
#  4. SHA-256 throughput against openssl speed.
# Times are the best of 3 wall-clock runs of the whole `modelgate scan` (sandboxed
# worker included). Inputs are cached in $BENCH_DIR (default /var/tmp/modelgate-bench).
set -euo pipefail
: "${MODELGATE:?}" "${PYTHON3:=python3}"
here=$(cd "$(dirname "$0")" && pwd)
dir=${BENCH_DIR:-/var/tmp/modelgate-bench}
"$PYTHON3" "$here/make-bench-files.py" "$dir"

best_of_3() {   # prints seconds, best of three runs of "$@"
        local best=
        for _ in 1 2 3; do
                local t0 t1
                t0=$(date +%s.%N)
                "$@" >/dev/null 2>&1 || true
                t1=$(date +%s.%N)
                best=$(echo "$t0 $t1 $best" | awk '{d=$2-$1; if ($3=="" || d<$3) print d; else print $3}')
        done
        echo "$best"
}
size_mb() { echo "$(stat -c %s "$1") / 1048576" | bc -l; }
cat /dev/null | bc >/dev/null 2>&1 || { echo "bench needs bc (apt-get install bc)"; exit 1; }

for f in "$dir"/*; do [ -f "$f" ] && cat "$f" >/dev/null; done   # warm the page cache

so=$dir/small-opcodes.pkl
t_mg=$(best_of_3 "$MODELGATE" scan --jobs 1 "$so")
t_py=$(best_of_3 "$PYTHON3" -c "import pickletools,sys; d=open(sys.argv[1],'rb').read(); [0 for _ in pickletools.genops(d)]" "$so")
mb=$(size_mb "$so")
printf 'small-opcodes pickle (%.0f MB): modelgate %.3f s = %.0f MB/s; pickletools.genops %.3f s = %.1f MB/s; ratio %.0fx\n' \
        "$mb" "$t_mg" "$(echo "$mb / $t_mg" | bc -l)" "$t_py" "$(echo "$mb / $t_py" | bc -l)" "$(echo "$t_py / $t_mg" | bc -l)"

for f in legacy-250mb.pt joblib-250mb.pkl; do
        t=$(best_of_3 "$MODELGATE" scan --jobs 1 "$dir/$f")
        mb=$(size_mb "$dir/$f")
        printf '%s (%.0f MB): %.3f s = %.0f MB/s\n' "$f" "$mb" "$t" "$(echo "$mb / $t" | bc -l)"
done

t100=$(best_of_3 "$MODELGATE" scan --jobs 1 "$dir/zip-100mb.pt")
t2g=$(best_of_3 "$MODELGATE" scan --jobs 1 "$dir/zip-2gb.pt")
printf 'torch zip decide time: 100 MB %.1f ms, 2 GB %.1f ms (ratio %.2f for 20x the data)\n' \
        "$(echo "$t100 * 1000" | bc -l)" "$(echo "$t2g * 1000" | bc -l)" "$(echo "$t2g / $t100" | bc -l)"

# 4. SHA-256 throughput of the hashing path (pread + EVP in the sandboxed worker,
#    via `modelgate manifest` of one 1 GiB file) against `openssl speed -evp sha256`
#    on the same machine in the same run. Both in decimal MB/s.
hb=$dir/hash
mkdir -p "$hb"
[ -f "$hb/1g.bin" ] || head -c 1073741824 /dev/urandom >"$hb/1g.bin"
cat "$hb/1g.bin" >/dev/null
t=$(best_of_3 "$MODELGATE" manifest --jobs 1 "$hb")
ours=$(echo "1073.741824 / $t" | bc -l)
ossl=$(openssl speed -evp sha256 -seconds 3 -bytes 16384 2>/dev/null | awk '/^sha256/ {sub(/k$/, "", $2); print $2 / 1000}')
printf 'SHA-256: modelgate manifest of 1 GiB %.3f s = %.0f MB/s; openssl speed -evp sha256 (16 KiB) %.0f MB/s; %.0f%%\n' \
        "$t" "$ours" "$ossl" "$(echo "100 * $ours / $ossl" | bc -l)"
