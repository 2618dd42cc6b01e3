#!/bin/bash
# convert-bench.sh — `modelgate convert` of a >= 1 GB checkpoint against `cp` of the
# same file on the same disk, in the same run, best of 3 each, page cache warm for
# both. Prints both times and the ratio (cp time / convert time: 1.0 = as fast as
# cp; the goal is >= 0.5). Also prints cp followed by sync of the copy, since the
# converter fsyncs its output and cp does not, and the SHA-256 of the input alone:
# the converter writes it into __metadata__, so it can be no faster than that.
# Env: MODELGATE (binary), PYTHON3 (with Debian's python3-torch), BENCH_DIR (default
# /var/tmp), BENCH_MB (checkpoint size, default 1100).
set -eu
: "${MODELGATE:?set MODELGATE to the modelgate binary}"
PYTHON3=${PYTHON3:-/usr/bin/python3}
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/convert-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
mb=${BENCH_MB:-1100}

"$PYTHON3" - "$dir/big.pt" "$mb" <<'EOF'
import sys
import torch
path, mb = sys.argv[1], int(sys.argv[2])
n = 4
per = mb * (1 << 20) // 4 // n          # fp32 elements per tensor
torch.manual_seed(0)
torch.save({f"layer{i}.weight": torch.empty(per).uniform_() for i in range(n)}, path)
EOF
size=$(stat -c %s "$dir/big.pt")
cat "$dir/big.pt" >/dev/null   # warm: both commands read from the page cache

now() { date +%s.%N; }
best() { # best of 3 wall-clock seconds of "$@", output removed before each run
        local b=
        for _ in 1 2 3; do
                rm -f "$dir/out"
                sync
                local t0 t1
                t0=$(now)
                "$@" >/dev/null
                t1=$(now)
                b=$(echo "$t1 $t0 ${b:-}" | awk '{d = $1 - $2; if ($3 == "" || d < $3) print d; else print $3}')
        done
        echo "$b"
}

cp_s=$(best cp "$dir/big.pt" "$dir/out")
cps_s=$(best sh -c "cp '$dir/big.pt' '$dir/out' && sync '$dir/out'")
sha_s=$(best "$MODELGATE" scan --sha256 "$dir/big.pt")
conv_s=$(best "$MODELGATE" convert --force "$dir/big.pt" "$dir/out")

"$PYTHON3" - "$dir/big.pt" "$dir/out" <<'EOF'
import json, struct, sys, torch
sd = torch.load(sys.argv[1])
data = open(sys.argv[2], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
hdr = json.loads(data[8:8 + n])
for k, t in sd.items():
    a, b = hdr[k]["data_offsets"]
    assert data[8 + n + a:8 + n + b] == t.numpy().tobytes(), k
EOF

awk -v size="$size" -v cp="$cp_s" -v cps="$cps_s" -v sha="$sha_s" -v conv="$conv_s" 'BEGIN {
        mib = size / 1048576
        printf "checkpoint: %.0f MiB, 4 fp32 tensors (output verified against torch.load)\n", mib
        printf "cp:                %.3f s  %6.0f MiB/s\n", cp, mib / cp
        printf "cp + sync:         %.3f s  %6.0f MiB/s\n", cps, mib / cps
        printf "SHA-256 alone:     %.3f s  %6.0f MiB/s (modelgate scan --sha256: the floor for convert)\n", sha, mib / sha
        printf "modelgate convert: %.3f s  %6.0f MiB/s (scan, plan, copy, SHA-256, fsync)\n", conv, mib / conv
        printf "ratio convert/cp speed: %.2f (goal >= 0.50: %s); against cp + sync: %.2f; against SHA-256 alone: %.2f\n",
               cp / conv, ((cp / conv >= 0.5) ? "met" : "NOT met"), cps / conv, sha / conv
}'

# The same with the input read from the disk rather than the page cache (root
# only: the caches are dropped before every run) — a checkpoint converted long
# after it was downloaded.
if [ "$(id -u)" -eq 0 ] && [ -w /proc/sys/vm/drop_caches ]; then
        cold() {
                local b=
                for _ in 1 2 3; do
                        rm -f "$dir/out"
                        sync
                        echo 3 >/proc/sys/vm/drop_caches
                        local t0 t1
                        t0=$(now)
                        "$@" >/dev/null
                        t1=$(now)
                        b=$(echo "$t1 $t0 ${b:-}" | awk '{d = $1 - $2; if ($3 == "" || d < $3) print d; else print $3}')
                done
                echo "$b"
        }
        ccp_s=$(cold cp "$dir/big.pt" "$dir/out")
        cconv_s=$(cold "$MODELGATE" convert --force "$dir/big.pt" "$dir/out")
        awk -v cp="$ccp_s" -v conv="$cconv_s" 'BEGIN {
                printf "cold cache: cp %.3f s, modelgate convert %.3f s: ratio %.2f (goal >= 0.50: %s)\n",
                       cp, conv, cp / conv, ((cp / conv >= 0.5) ? "met" : "NOT met")
        }'
else
        echo "cold cache: not measured (needs root to drop the page cache)"
fi
