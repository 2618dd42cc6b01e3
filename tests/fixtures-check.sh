#!/bin/bash
# fixtures-check.sh — every generated fixture gets its exact verdict and rule from
# `modelgate scan` (sandboxed workers) and the same from the in-process scanner.
set -u
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
bash "$srcdir/tests/fixtures-gen.sh" || { st=$?; [ $st -eq 77 ] && { echo "1..0 # SKIP python3 loaders missing"; exit 0; }; exit $st; }
exec "${PYTHON3:-python3}" "$srcdir/tests/fixtures-check.py"
