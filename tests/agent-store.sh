#!/bin/bash
# agent-store.sh — the verdict store and attestations with the real modelgated (root).
set -u
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
if [ "$(id -u)" -ne 0 ]; then
        echo "1..0 # SKIP modelgated needs root for fanotify permission events"
        exit 0
fi
export MODELGATED=${MODELGATED:-$TOP_BUILDDIR/modelgated}
export FIXTURES=${FIXTURES:-/nonexistent}   # agent-check.py's helpers only
exec "${PYTHON3:-python3}" "$srcdir/tests/agent-store.py"
