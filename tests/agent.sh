#!/bin/bash
# agent.sh — the real modelgated with real fanotify, journald and loaders (root).
set -u
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
if [ "$(id -u)" -ne 0 ]; then
        echo "1..0 # SKIP modelgated needs root for fanotify permission events"
        exit 0
fi
bash "$srcdir/tests/fixtures-gen.sh" || { st=$?; [ $st -eq 77 ] && { echo "1..0 # SKIP python3 loaders missing"; exit 0; }; exit $st; }
export MODELGATED=${MODELGATED:-$TOP_BUILDDIR/modelgated}
# tests/journal-remote.sh too may start a journald of its own and stops it when done:
# never both at once (make -j check), so neither loses the journal under the other.
exec flock -w 1800 /var/tmp/modelgate-tests-journald.lock "${PYTHON3:-python3}" "$srcdir/tests/agent-check.py"
