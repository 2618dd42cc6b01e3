#!/bin/bash
# systemd-unit.sh — the unit and the journal catalog as systemd itself reads them,
# with no running systemd: `systemd-analyze verify` of the unit generated with the
# built binaries is silent; `systemd-analyze security --offline=yes` scores it no
# worse than modelgated(8) says; no option that would give the daemon a mount
# namespace of its own (and so blind its fanotify marks) is set; the catalog is
# indexed by journalctl and has an entry for every MESSAGE_ID of
# agent/journal-ids.h.
set -u
. "${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/tap.sh"
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${TOP_BUILDDIR:-$srcdir}
unit_in=$srcdir/systemd/modelgated.service.in
catalog=$srcdir/systemd/modelgated.catalog
ids_h=$srcdir/agent/journal-ids.h
manpage=$srcdir/man/modelgated.8

command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (apt-get install systemd)"
command -v journalctl >/dev/null || skip "journalctl is not installed (apt-get install systemd)"
[ -x "$builddir/modelgated" ] ||
        skip "the daemon is not built ($builddir/modelgated does not exist yet): verify needs a real ExecStart="

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Options that make systemd 252 run the service in a mount namespace of its own
# (measured one by one under a booted systemd: PID 1's and the service's
# /proc/PID/ns/mnt differ), and the other ways to get one.
forbidden="PrivateTmp PrivateDevices PrivateMounts PrivateIPC PrivateUsers ProtectSystem ProtectHome
        ProtectKernelTunables ProtectKernelModules ProtectKernelLogs ProtectControlGroups ProtectProc
        ProcSubset ReadOnlyPaths ReadWritePaths InaccessiblePaths ExecPaths NoExecPaths
        TemporaryFileSystem BindPaths BindReadOnlyPaths RootDirectory RootImage MountImages
        ExtensionImages ExtensionDirectories DynamicUser MountFlags LogNamespace IPCNamespacePath"
ids=$(sed -n 's/^#define MG_MSGID_[A-Z_]* *"\([0-9a-f]\{32\}\)".*/\1/p' "$ids_h")

echo "1..$((4 + $(echo $forbidden | wc -w) + 2 + $(echo $ids | wc -w)))"

# ---- the unit, generated as make does, with the built binaries ---------------
mkdir -p "$tmp/etc/modelgate"
sed -e "s|@sbindir@|$builddir|g" -e "s|@sysconfdir@|$tmp/etc|g" "$unit_in" >"$tmp/modelgated.service"
check "the generated unit has no @placeholder@ left" \
        bash -c "! grep -n '@[a-z_]*@' '$tmp/modelgated.service'"

# verify runs man(1) on each Documentation= page: show it the pages of this tree.
for p in "$srcdir"/man/*.[1-8]; do
        sec=${p##*.}
        mkdir -p "$tmp/man/man$sec"
        ln -s "$p" "$tmp/man/man$sec/"
done
MANPATH=$tmp/man SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=yes "$tmp/modelgated.service" \
        >"$tmp/verify.all" 2>&1
verify_rc=$?
# verify loads the host's units this one names (local-fs.target, sysinit.target...);
# complaints about those files are the host's, not this unit's, and are only shown.
host_unit='^/[^:]*/[^/:]+\.(service|socket|target|mount|automount|swap|timer|path|slice|scope):[0-9]+: '
grep -Ev "$host_unit" "$tmp/verify.all" >"$tmp/verify.out"
grep -E "$host_unit" "$tmp/verify.all" | grep -v '/modelgated\.service:' >"$tmp/verify.host"
grep -E "$host_unit" "$tmp/verify.all" | grep '/modelgated\.service:' >>"$tmp/verify.out"
check "systemd-analyze verify passes and says nothing about this unit (rc $verify_rc)" \
        test $verify_rc -eq 0 -a ! -s "$tmp/verify.out"
diag <"$tmp/verify.out"
sed 's/^/ignored, about a host unit: /' "$tmp/verify.host" | diag

SYSTEMD_LOG_COLOR=0 systemd-analyze security --offline=yes --no-pager "$tmp/modelgated.service" \
        >"$tmp/security.out" 2>&1
score=$(sed -n 's/.*Overall exposure level for modelgated.service: \([0-9.]*\).*/\1/p' "$tmp/security.out")
# The documented score: the SECURITY section of modelgated(8) states it.
documented=$(sed -n 's/.*exposure level of \([0-9][0-9]*\.[0-9]\).*/\1/p' "$manpage" | head -n 1)
check "systemd-analyze security --offline=yes: exposure ${score:-?} is at most the ${documented:-?} in modelgated(8)" \
        awk -v s="$score" -v d="$documented" 'BEGIN { exit !(s != "" && d != "" && s + 0 <= d + 0) }'
[ -n "$score" ] || diag <"$tmp/security.out"
grep '✗' "$tmp/security.out" | sed 's/  */ /g' | diag

# The unit stays free of mount namespaces: one case per option.
for opt in $forbidden; do
        check "$opt= is not set (it would put the daemon in a namespace of its own)" \
                bash -c "! grep -Eq '^[[:space:]]*$opt[[:space:]]*=' '$unit_in'"
done
check "the daemon keeps the capabilities fanotify needs (CAP_SYS_ADMIN in CapabilityBoundingSet=)" \
        grep -Eq '^CapabilityBoundingSet=.*\bCAP_SYS_ADMIN\b' "$unit_in"
check "SystemCallFilter= admits fanotify_init, fanotify_mark and seccomp" \
        bash -c "grep '^SystemCallFilter=[^~]' '$unit_in' | grep -q fanotify_init &&
                 grep '^SystemCallFilter=[^~]' '$unit_in' | grep -q fanotify_mark &&
                 grep '^SystemCallFilter=[^~]' '$unit_in' | grep -qw seccomp"

# ---- the catalog --------------------------------------------------------------
root=$tmp/root
mkdir -p "$root/usr/lib/systemd/catalog"
cp "$catalog" "$root/usr/lib/systemd/catalog/"
journalctl --root="$root" --update-catalog >"$tmp/update.out" 2>&1
rc=$?
check "journalctl --update-catalog indexes modelgated.catalog without a complaint" \
        test $rc -eq 0 -a ! -s "$tmp/update.out" -a -f "$root/var/lib/systemd/catalog/database"
diag <"$tmp/update.out"
journalctl --root="$root" --list-catalog >"$tmp/list.out" 2>&1
for id in $ids; do
        name=$(sed -n "s/^#define \(MG_MSGID_[A-Z_]*\) *\"$id\".*/\1/p" "$ids_h")
        entry_ok() {
                grep -q "^$id modelgate: " "$tmp/list.out" || return 1
                journalctl --root="$root" --dump-catalog "$id" >"$tmp/entry" 2>&1 || return 1
                grep -q '^Subject: ' "$tmp/entry" && grep -qx 'Defined-By: modelgate' "$tmp/entry" &&
                        grep -q '^Support: ' "$tmp/entry" && grep -qx 'Documentation: man:modelgated(8)' "$tmp/entry"
        }
        check "the catalog explains $name ($id): Subject, Defined-By: modelgate, Support, Documentation" entry_ok
done
exit $fail
