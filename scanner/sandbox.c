/* sandbox.c — what a scanner worker may do after it has its socket: receive a
 * request and an fd, read that fd (mmap/fstat), allocate memory, answer, exit.
 * Nothing here opens, executes, connects or signals. The filter kills the whole
 * process on anything else; the architecture is checked first. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <seccomp.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

/* The unprivileged identity a root-started worker takes (nobody/nogroup). */
#define SANDBOX_UID 65534
#define SANDBOX_GID 65534

static int reopen_std_to_devnull(void) {
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (int i = 0; i < 3; i++)
                if (dup2(fd, i) < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
        if (fd > 2)
                close(fd);
        return 0;
}

static int set_limit(int resource, rlim_t value) {
        struct rlimit rl = { .rlim_cur = value, .rlim_max = value };
        return setrlimit(resource, &rl) < 0 ? -errno : 0;
}

static int drop_root(void) {
        if (geteuid() != 0)
                return 0;
        if (setgroups(0, NULL) < 0 || setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID) < 0 ||
            setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) < 0)
                return -errno;
        if (setuid(0) == 0)   /* must not be able to get back */
                return -EPERM;
        return 0;
}

#define ALLOW(call) do { \
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(call), 0)) < 0) goto out; \
} while (0)

static int load_filter(void) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
        int r;

        if (!ctx)
                return -ENOMEM;
        /* Only the native architecture: a syscall made through another ABI (x32,
         * i386 int 0x80) is a bad-arch kill. */
        if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
                goto out;

        ALLOW(recvmsg);        /* next request and its fd, on the worker socket */
        ALLOW(sendmsg);        /* report messages back */
        ALLOW(close);          /* the scanned fd when done */
        ALLOW(fstat);          /* size and type of the scanned fd (fd-based only) */
        ALLOW(pread64);        /* hashing the scanned fd in chunks */
        ALLOW(munmap);         /* unmapping the file and freed memory */
        ALLOW(brk);            /* malloc */
        ALLOW(madvise);        /* malloc trimming */
        ALLOW(mremap);         /* realloc of large blocks */
        ALLOW(exit_group);     /* done */
        ALLOW(exit);
        ALLOW(rt_sigreturn);   /* returning from a signal handler */
        ALLOW(clock_gettime);  /* vDSO fallback */
        ALLOW(sysinfo);        /* glibc qsort() sizes its merge buffer from physical memory */

        /* mmap/mprotect: memory and the read-only file mapping, never executable. */
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                                  SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) < 0)
                goto out;
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                                  SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) < 0)
                goto out;
#ifdef MODELGATE_SANITIZE
        /* Sanitizer builds only: let ASan/UBSan print their report on stderr. */
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_EQ, 2))) < 0)
                goto out;
        ALLOW(getpid);
        ALLOW(gettid);
        ALLOW(sigaltstack);
        ALLOW(rt_sigprocmask);
#endif
        r = seccomp_load(ctx);
out:
        seccomp_release(ctx);
        return r;
}

int sandbox_enter(int keep_fd, const char **ret_step) {
        const char *step;
        int r;

        step = "reopening stdin/stdout/stderr on /dev/null";
        if ((r = reopen_std_to_devnull()) < 0)
                goto fail;
        step = "closing inherited file descriptors";
        if (close_range((unsigned) keep_fd + 1, ~0U, 0) < 0) {
                r = -errno;
                goto fail;
        }
        step = "setting resource limits";
        if ((r = set_limit(RLIMIT_NOFILE, SANDBOX_NOFILE)) < 0 || (r = set_limit(RLIMIT_FSIZE, 0)) < 0 ||
            (r = set_limit(RLIMIT_CORE, 0)) < 0)
                goto fail;
#ifndef MODELGATE_SANITIZE
        /* Not under AddressSanitizer, whose shadow memory is a huge private mapping. */
        if ((r = set_limit(RLIMIT_DATA, SANDBOX_DATA_LIMIT)) < 0)
                goto fail;
#endif
        step = "dropping root to nobody";
        if ((r = drop_root()) < 0)
                goto fail;
        step = "setting no_new_privs";
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                r = -errno;
                goto fail;
        }
        step = "making the process non-dumpable";
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
                r = -errno;
                goto fail;
        }
        step = "loading the seccomp filter";
        if ((r = load_filter()) < 0)
                goto fail;
        return 0;
fail:
        if (ret_step)
                *ret_step = step;
        return r;
}
