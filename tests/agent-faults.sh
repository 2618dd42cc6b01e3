#!/bin/bash
# agent-faults.sh — modelgated under faults and load (root): see agent-faults.py.
# Runs in a mount namespace of its own, so that the journald it starts, stops and
# kills (on a private /run/systemd and /run/log) is nobody else's.
set -u
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${TOP_BUILDDIR:-$srcdir}
. "$srcdir/tests/tap.sh"
[ "$(id -u)" -eq 0 ] || skip "modelgated needs root for fanotify permission events"
for t in unshare prlimit mount; do
        command -v "$t" >/dev/null || skip "$t is not installed (apt-get install util-linux)"
done
[ -x /lib/systemd/systemd-journald ] || skip "no /lib/systemd/systemd-journald"
for p in fault-flood fault-worker; do
        [ -x "$builddir/tests/$p" ] || skip "tests/$p is not built (make check builds it)"
done
export MODELGATE=${MODELGATE:-$builddir/modelgate} MODELGATED=${MODELGATED:-$builddir/modelgated}
export FAULT_FLOOD=$builddir/tests/fault-flood FAULT_WORKER=$builddir/tests/fault-worker
export TOP_SRCDIR=$srcdir TOP_BUILDDIR=$builddir
exec unshare --mount --propagation private "${PYTHON3:-python3}" "$srcdir/tests/agent-faults.py"
