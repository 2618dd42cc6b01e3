#!/bin/bash
# agent-demo.sh — `make demo`, second half (root): modelgated guards the demo models
# and a real torch.load of the trojaned one gets PermissionError.
set -u
dir=${1:-demo-out}
builddir=${2:-.}
py=${PYTHON3:-/usr/bin/python3}
log=$(mktemp)
"$builddir/modelgated" --watch "$dir" --worker-exe "$builddir/modelgate" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "modelgated: ready" "$log" && break; sleep 0.1; done
if ! grep -q "modelgated: ready" "$log"; then
        cat "$log"
        exit 1
fi
echo "modelgated is guarding $dir; loading both models with torch.load:"
"$py" - "$dir" <<'PY'
import sys, torch
d = sys.argv[1]
for name in ("bert-tiny-clean", "bert-tiny-trojan"):
    path = f"{d}/{name}/pytorch_model.bin"
    try:
        sd = torch.load(path)
        print(f"  torch.load({path}): loaded, {len(sd)} tensors")
    except PermissionError as e:
        print(f"  torch.load({path}): PermissionError: {e.strerror}")
PY
trojan=$(realpath "$dir/bert-tiny-trojan/pytorch_model.bin")
if systemd-cat true 2>/dev/null; then   # a journald is listening (a socket file alone may be stale)
        echo "the audit trail (journalctl -t modelgated MODELGATE_VERDICT=deny MODELGATE_PATH=...):"
        for _ in $(seq 50); do   # the record follows the answer (after the file is hashed)
                out=$(journalctl -t modelgated MODELGATE_VERDICT=deny MODELGATE_PATH="$trojan" -n 1 --no-pager \
                        -o verbose 2>/dev/null | grep -E '^ +(MESSAGE|MODELGATE_[A-Z0-9]+)=' | sed 's/^ */  /')
                [ -n "$out" ] && break
                sleep 0.1
        done
        echo "$out"
else
        echo "(no journald is running here, so there is no audit trail to show)"
fi
