#!/bin/bash
# man.sh — the man pages render with no warnings from man/groff.
set -u
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
pages=(man/modelgate.1 man/modelgate-policy.5 man/modelgated.8)
if ! command -v man >/dev/null; then
        echo "1..0 # SKIP man is not installed (apt-get install man-db groff-base)"
        exit 0
fi
echo "1..${#pages[@]}"
i=0
fail=0
for p in "${pages[@]}"; do
        i=$((i + 1))
        out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$srcdir/$p" 2>&1 >/dev/null)
        if [ -z "$out" ]; then
                echo "ok $i - $p renders without warnings"
        else
                echo "not ok $i - $p renders without warnings"
                echo "$out" | sed 's/^/# /'
                fail=1
        fi
done
exit $fail
