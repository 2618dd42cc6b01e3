/* worker-pool.c — fork+exec of workers and the reading of their messages. The
 * worker is assumed hostile: its messages go through wp_receiver_feed(), its
 * death or silence is the caller's to turn into SCAN_ERROR/SCAN_TIMEOUT. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "worker-pool.h"

/* Workers that could not be killed: reaped by worker_reap_orphans() once they exit.
 * Only these are reaped asynchronously, so a live worker's pid is never freed for
 * reuse behind the caller's back. */
#define ORPHANS_MAX 64
static pid_t orphans[ORPHANS_MAX];

void worker_reap_orphans(void) {
        for (size_t i = 0; i < ORPHANS_MAX; i++)
                if (orphans[i] > 0 && waitpid(orphans[i], NULL, WNOHANG) != 0)
                        orphans[i] = 0;
}

uint64_t monotonic_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int worker_start(struct worker *w, const char *exe) {
        int sv[2];
        pid_t pid;

        memset(w, 0, sizeof(*w));
        w->sock = -1;
        w->pid = -1;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(sv[0]);
                close(sv[1]);
                return r;
        }
        if (pid == 0) {
                /* Child: only async-signal-safe calls until exec. */
                char *const argv[] = { (char *) "modelgate-worker", (char *) "worker", NULL };
                char *const envp[] = { NULL };
                /* An agent runs with oom_score_adj -1000; its workers must stay
                 * killable under memory pressure (lowering needs no privilege... raising
                 * back to 0 does not either). Best effort: a CLI is at 0 already. */
                /* A terminal's Ctrl-C goes to the whole foreground process group: it
                 * is the front end's to act on (finish the files in flight, then kill
                 * its workers), not a worker's to die of. */
                struct sigaction ign = { .sa_handler = SIG_IGN };
                sigaction(SIGINT, &ign, NULL);
                int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
                if (oom >= 0) {
                        if (write(oom, "0", 1) < 0) { /* not fatal */ }
                        close(oom);
                }
                if (sv[1] == WORKER_FD) {
                        if (fcntl(WORKER_FD, F_SETFD, 0) < 0)
                                _exit(127);
                } else if (dup2(sv[1], WORKER_FD) < 0)
                        _exit(127);
                execve(exe, argv, envp);
                _exit(127);
        }
        close(sv[1]);
        if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
                int r = -errno;
                close(sv[0]);
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return r;
        }
        w->sock = sv[0];
        w->pid = pid;
        return 0;
}

int worker_submit(struct worker *w, uint64_t job, uint32_t flags, int fd, struct scan_report *r,
                  uint64_t deadline_ms) {
        int ret = wp_send_request(w->sock, job, flags, fd);
        if (ret < 0)
                return ret;
        w->busy = true;
        w->job = job;
        w->deadline_ms = deadline_ms;
        wp_receiver_start(&w->rx, job, r);
        return 0;
}

int worker_read(struct worker *w) {
        struct wp_msg m;

        for (;;) {
                ssize_t n = recv(w->sock, &m, sizeof(m), MSG_TRUNC);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -EPIPE;
                }
                if (n == 0)
                        return -EPIPE;
                if (!w->busy)
                        return -EBADMSG;   /* unsolicited */
                int r = wp_receiver_feed(&w->rx, &m, (size_t) n);
                if (r < 0)
                        return r;
                if (r == 1) {
                        w->busy = false;
                        return 1;
                }
        }
}

void worker_stop(struct worker *w) {
        if (w->sock >= 0) {
                close(w->sock);
                w->sock = -1;
        }
        if (w->pid > 0) {
                /* A worker that cannot be killed (the caller lacks CAP_KILL over it)
                 * is not waited for: that would block for ever. Its socket is closed,
                 * so it exits when it next reads; it is reaped then. */
                if (kill(w->pid, SIGKILL) == 0)
                        while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
                                ;
                else
                        for (size_t i = 0; i < ORPHANS_MAX; i++)
                                if (orphans[i] <= 0) {
                                        orphans[i] = w->pid;
                                        break;
                                }
                w->pid = -1;
        }
        w->busy = false;
}

void worker_finish(struct worker *w) {
        if (w->sock >= 0) {
                close(w->sock);
                w->sock = -1;
        }
        if (w->pid > 0) {
                while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                w->pid = -1;
        }
}
