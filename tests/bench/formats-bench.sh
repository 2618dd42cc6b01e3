#!/bin/bash
# formats-bench.sh — part of `make bench`: the time
# `modelgate scan` takes to decide a 1 KB and a 20 GB (sparse) safetensors file and
# GGUF file. Deciding must cost what the header costs, so each pair's ratio should
# be close to 1. Times are the best of $BENCH_RUNS (default 5) wall-clock runs of
# the whole CLI, sandboxed worker included. Inputs are made in $BENCH_DIR (default
# /var/tmp/modelgate-bench); the 20 GB files are sparse and take no disk space.
set -euo pipefail
: "${MODELGATE:?set MODELGATE to the modelgate binary}" "${PYTHON3:=python3}"
dir=${BENCH_DIR:-/var/tmp/modelgate-bench}
runs=${BENCH_RUNS:-5}
mkdir -p "$dir"

# name size: a valid file of exactly `size` bytes, one tensor covering the data.
"$PYTHON3" - "$dir" <<'PY'
import json, os, struct, sys

d = sys.argv[1]
GB20 = 20 << 30

def safetensors(path, size):
    data = size
    for _ in range(2):   # the header's length depends on the numbers in it
        h = json.dumps({"__metadata__": {"license": "apache-2.0"},
                        "w": {"dtype": "U8", "shape": [data], "data_offsets": [0, data]}}).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        data = size - 8 - len(h)
    write(path, struct.pack("<Q", len(h)) + h, size)

def gguf(path, size):
    def s(x):
        return struct.pack("<Q", len(x)) + x
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
    head += s(b"general.license") + struct.pack("<I", 8) + s(b"apache-2.0")
    info_len = len(head) + 8 + 1 + 4 + 16 + 4 + 8
    start = (info_len + 31) // 32 * 32
    row = 32
    rows = (size - start) // row
    head += s(b"w") + struct.pack("<IQQIQ", 2, row, rows, 24, 0)   # I8 [row, rows]
    head += b"\0" * (start - len(head))
    write(path, head, start + row * rows)

def write(path, head, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)

safetensors(os.path.join(d, "formats-1kb.safetensors"), 1024)
safetensors(os.path.join(d, "formats-20gb.safetensors"), GB20)
gguf(os.path.join(d, "formats-1kb.gguf"), 1024)
gguf(os.path.join(d, "formats-20gb.gguf"), GB20)
PY

best_of() {   # prints seconds, best of $runs runs of "$@"; fails if a run does not allow the file
        local best= t0 t1
        for _ in $(seq "$runs"); do
                t0=$(date +%s.%N)
                "$@" >/dev/null 2>&1 || { echo "not allowed: $*" >&2; exit 1; }
                t1=$(date +%s.%N)
                best=$(awk -v a="$t0" -v b="$t1" -v m="$best" 'BEGIN { d = b - a; if (m == "" || d < m) print d; else print m }')
        done
        echo "$best"
}

for ext in safetensors gguf; do
        small=$(best_of "$MODELGATE" scan --jobs 1 "$dir/formats-1kb.$ext")
        big=$(best_of "$MODELGATE" scan --jobs 1 "$dir/formats-20gb.$ext")
        awk -v e="$ext" -v s="$small" -v b="$big" 'BEGIN {
                printf "%s decide time: 1 KB %.1f ms, 20 GB (sparse) %.1f ms (ratio %.2f for 2e7 times the data)\n",
                       e, s * 1000, b * 1000, b / s }'
done
