/* sandbox.h — the worker's narrowing, behind one call. After sandbox_enter()
 * returns 0 the process can use only the fds it already holds, through the
 * system calls listed in sandbox.c; anything else kills it. */
#ifndef MODELGATE_SANDBOX_H
#define MODELGATE_SANDBOX_H

/* Heap and anonymous memory a worker may use (RLIMIT_DATA). File mappings of the
 * scanned file are shared read-only and do not count. 1.5 GiB covers the VM's own
 * limits (memo, stack, decoded data, an inflated member) with room to spare. */
#define SANDBOX_DATA_LIMIT ((unsigned long) 3 << 29)

/* File descriptors a worker may hold: 0-2, its socket, one file in flight. */
#define SANDBOX_NOFILE 8

/* Fixed order, each step fatal: keep only fds 0..keep_fd (0-2 become /dev/null),
 * resource limits, drop root to nobody, no_new_privs, non-dumpable, then the
 * seccomp filter (kill by default, native architecture only). Returns 0 or
 * -errno naming the step that failed in *ret_step. */
int sandbox_enter(int keep_fd, const char **ret_step);

#endif
