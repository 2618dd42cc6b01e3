#!/bin/bash
# fixtures-gen.sh — generates the fixture set once per build tree (under a lock, so
# parallel tests share it). Prints nothing on success; exits 77 with the reason when
# Debian's python3 loaders are missing.
set -eu
: "${FIXTURES:?}" "${PYTHON3:=python3}"
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
if ! "$PYTHON3" -c 'import torch, numpy, joblib, sklearn, h5py, onnx, jinja2' 2>/dev/null; then
        echo "# SKIP: $PYTHON3 lacks torch/numpy/joblib/sklearn/h5py/onnx/jinja2 (apt-get install python3-torch python3-numpy python3-joblib python3-sklearn python3-h5py python3-onnx python3-jinja2)"
        exit 77
fi
mkdir -p "$(dirname "$FIXTURES")"
exec 9>"$FIXTURES.lock"
flock 9
stale=0
[ -f "$FIXTURES/EXPECT" ] || stale=1
for gen in "$srcdir"/tests/fixtures/*.py; do
        [ "$gen" -nt "$FIXTURES/EXPECT" ] && stale=1
done
if [ $stale -eq 1 ]; then
        rm -rf "$FIXTURES"
        "$PYTHON3" "$srcdir/tests/fixtures/generate.py" "$FIXTURES" >"$FIXTURES.log" 2>&1 || {
                cat "$FIXTURES.log" >&2
                exit 1
        }
fi
