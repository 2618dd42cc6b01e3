/* test-sandbox.c — the worker's seccomp sandbox on its own: after sandbox_enter()
 * each forbidden system call kills the process with SIGSYS, and what a worker
 * needs (reading a mapped fd, allocating, talking on its socket) still works. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"
#include "tap.h"

/* Runs fn in a child that has entered the sandbox (keeping fds up to keep_fd);
 * returns its wait status. */
static int run_sandboxed(void (*fn)(void), int keep_fd) {
        pid_t pid = fork();
        if (pid == 0) {
                const char *step = NULL;
                if (sandbox_enter(keep_fd, &step) < 0)
                        _exit(99);
                fn();
                _exit(0);
        }
        int st;
        TAP_CHECK(pid > 0);
        TAP_CHECK(waitpid(pid, &st, 0) == pid);
        return st;
}

static void expect_killed(void (*fn)(void)) {
        int st = run_sandboxed(fn, 2);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)) {
                fprintf(stderr, "# expected SIGSYS, got %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
                        WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
                exit(1);
        }
}

static void do_open(void) { syscall(SYS_open, "/etc/passwd", O_RDONLY); }
static void do_openat(void) { syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY); }
static void do_socket(void) { syscall(SYS_socket, AF_INET, SOCK_STREAM, 0); }
static void do_execve(void) {
        char *argv[] = { (char *) "/bin/true", NULL };
        syscall(SYS_execve, "/bin/true", argv, NULL);
}
static void do_ptrace(void) { syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0); }
static void do_fork(void) { syscall(SYS_fork); }
static void do_clone(void) { syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); }
static void do_kill(void) { syscall(SYS_kill, 1, 0); }
static void do_write(void) { syscall(SYS_write, 1, "x", 1); }
static void do_stat_path(void) {
        char buf[256];
        syscall(SYS_newfstatat, AT_FDCWD, "/etc/passwd", buf, 0);
}
static void do_mprotect_exec(void) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        syscall(SYS_mprotect, p, 4096, PROT_READ | PROT_EXEC);
}
static void do_mmap_exec(void) {
        syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
static void do_x32_abi(void) {
        /* getpid through the x32 ABI bit: another architecture's numbering. */
        syscall(0x40000000 | SYS_getpid);
}

static void forbidden_open_is_killed(void) { expect_killed(do_open); }
static void forbidden_openat_is_killed(void) { expect_killed(do_openat); }
static void forbidden_socket_is_killed(void) { expect_killed(do_socket); }
static void forbidden_execve_is_killed(void) { expect_killed(do_execve); }
static void forbidden_ptrace_is_killed(void) { expect_killed(do_ptrace); }
static void forbidden_fork_is_killed(void) { expect_killed(do_fork); }
static void forbidden_clone_is_killed(void) { expect_killed(do_clone); }
static void forbidden_kill_is_killed(void) { expect_killed(do_kill); }
/* Sanitizer builds let reports reach fd 2; writing to stdout stays forbidden. */
static void forbidden_write_is_killed(void) { expect_killed(do_write); }
static void forbidden_stat_by_path_is_killed(void) { expect_killed(do_stat_path); }
static void forbidden_mprotect_exec_is_killed(void) { expect_killed(do_mprotect_exec); }
static void forbidden_mmap_exec_is_killed(void) { expect_killed(do_mmap_exec); }
static void other_abi_is_killed(void) { expect_killed(do_x32_abi); }

static int pipe_fds[2];

static void do_allowed_work(void) {
        /* fd 3 is a socket the parent reads; fd 4 a file to map. */
        struct stat st;
        if (syscall(SYS_fstat, 4, &st) < 0)
                _exit(10);
        const char *p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, 4, 0);
        if (p == MAP_FAILED)
                _exit(11);
        char *big = malloc(64 << 20);
        if (!big)
                _exit(12);
        memset(big, 1, 64 << 20);
        free(big);
        struct iovec iov = { .iov_base = (void *) p, .iov_len = 5 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (sendmsg(3, &mh, 0) != 5)
                _exit(13);
        munmap((void *) p, (size_t) st.st_size);
        close(4);
}

static void allowed_work_still_works(void) {
        int sv[2];
        char tmpl[] = "/tmp/mg-sandbox-XXXXXX";
        int fd = mkstemp(tmpl);
        TAP_CHECK(fd >= 0);
        unlink(tmpl);
        TAP_CHECK(write(fd, "hello", 5) == 5);
        TAP_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
        /* Move everything above the fixed numbers first, so dup2 overwrites nothing. */
        fd = fcntl(fd, F_DUPFD, 20);
        sv[1] = fcntl(sv[1], F_DUPFD, 20);
        sv[0] = fcntl(sv[0], F_DUPFD, 20);
        TAP_CHECK(fd >= 20 && sv[0] >= 20 && sv[1] >= 20);
        TAP_CHECK(dup2(sv[1], 3) == 3);
        TAP_CHECK(dup2(fd, 4) == 4);
        (void) pipe_fds;
        int st = run_sandboxed(do_allowed_work, 4);
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
                fprintf(stderr, "# child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
        TAP_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        char buf[8] = { 0 };
        TAP_CHECK(recv(sv[0], buf, sizeof(buf), 0) == 5);
        TAP_CHECK(memcmp(buf, "hello", 5) == 0);
}

static void do_check_fds_closed(void) {
        /* fd 5 was open before sandbox_enter(4): it must be gone. */
        struct stat st;
        char c;
        struct iovec iov = { .iov_base = &c, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (syscall(SYS_fstat, 5, &st) == 0)
                _exit(20);
        /* Wait for the parent to look at us, then leave on EOF. */
        recvmsg(3, &mh, 0);
}

static bool status_has(pid_t pid, const char *line) {
        char path[64], buf[4096];
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        return strstr(buf, line) != NULL;
}

static void inherited_fds_closed_root_dropped_filter_on(void) {
        int sv[2];
        int fd = open("/dev/null", O_RDONLY);
        TAP_CHECK(fd >= 0);
        TAP_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
        TAP_CHECK(dup2(fd, 5) == 5);
        TAP_CHECK(dup2(fd, 4) == 4);
        TAP_CHECK(dup2(sv[1], 3) == 3);
        pid_t pid = fork();
        if (pid == 0) {
                if (sandbox_enter(4, NULL) < 0)
                        _exit(99);
                do_check_fds_closed();
                _exit(0);
        }
        TAP_CHECK(pid > 0);
        close(sv[1]);
        close(3);
        bool ok = false;
        for (int i = 0; i < 200 && !ok; i++) {
                ok = status_has(pid, "Seccomp:\t2") && status_has(pid, "NoNewPrivs:\t1") &&
                     (getuid() != 0 || status_has(pid, "Uid:\t65534\t65534\t65534\t65534"));
                if (!ok)
                        usleep(10000);
        }
        close(sv[0]);
        int st;
        TAP_CHECK(waitpid(pid, &st, 0) == pid);
        TAP_CHECK(ok);
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                fprintf(stderr, "# child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
                exit(1);
        }
}

TAP_MAIN(
        TAP_CASE(forbidden_open_is_killed),
        TAP_CASE(forbidden_openat_is_killed),
        TAP_CASE(forbidden_socket_is_killed),
        TAP_CASE(forbidden_execve_is_killed),
        TAP_CASE(forbidden_ptrace_is_killed),
        TAP_CASE(forbidden_fork_is_killed),
        TAP_CASE(forbidden_clone_is_killed),
        TAP_CASE(forbidden_kill_is_killed),
        TAP_CASE(forbidden_write_is_killed),
        TAP_CASE(forbidden_stat_by_path_is_killed),
        TAP_CASE(forbidden_mprotect_exec_is_killed),
        TAP_CASE(forbidden_mmap_exec_is_killed),
        TAP_CASE(other_abi_is_killed),
        TAP_CASE(allowed_work_still_works),
        TAP_CASE(inherited_fds_closed_root_dropped_filter_on),
)
