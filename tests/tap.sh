# tap.sh — TAP helpers for the shell tests (sourced): numbered results, a check
# that runs a command as one case, and a skip that prints its reason.
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
diag() { sed 's/^/# /'; }
skip() { echo "1..0 # SKIP $*"; exit 0; }
