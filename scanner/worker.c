/* worker.c — the worker's loop: narrow itself, then receive one fd at a time,
 * scan it, send the report, close it. It opens nothing and knows no paths; a
 * protocol error ends it (the front end replaces it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "report.h"
#include "sandbox.h"
#include "scan.h"
#include "worker-proto.h"
#include "worker.h"

int worker_main(void) {
        struct scan_report *r;
        struct stat st;
        const char *step = NULL;
        int type = 0;
        socklen_t tl = sizeof(type);
        int ret;

        if (fstat(WORKER_FD, &st) < 0 || !S_ISSOCK(st.st_mode) ||
            getsockopt(WORKER_FD, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET) {
                fprintf(stderr, "modelgate worker: fd %d is not a SOCK_SEQPACKET socket; this command is started by modelgate, not by hand\n",
                        WORKER_FD);
                return 2;
        }
        /* Allocate before the sandbox: the report is large and reused. */
        r = malloc(sizeof(*r));
        if (!r) {
                fprintf(stderr, "modelgate worker: out of memory\n");
                return 2;
        }
        if ((ret = hash_prepare()) < 0) {
                fprintf(stderr, "modelgate worker: cannot load SHA-256 from OpenSSL: %s\n", strerror(-ret));
                return 2;
        }
        if ((ret = sandbox_enter(WORKER_FD, &step)) < 0) {
                fprintf(stderr, "modelgate worker: sandbox failed while %s: %s\n", step, strerror(-ret));
                return 2;
        }

        for (;;) {
                uint64_t job;
                uint32_t flags;
                int fd;

                ret = wp_recv_request(WORKER_FD, &job, &flags, &fd);
                if (ret <= 0)
                        _exit(ret == 0 ? 0 : 2);
                report_init(r);
                ret = (flags & WP_FLAG_HASH_ONLY) ? 0 : scan_fd(fd, r);
                if (ret == 0 && (flags & (WP_FLAG_SHA256 | WP_FLAG_GIT_SHA1))) {
                        unsigned what = ((flags & WP_FLAG_SHA256) ? HASH_SHA256 : 0) |
                                        ((flags & WP_FLAG_GIT_SHA1) ? HASH_GIT_SHA1 : 0);
                        ret = hash_fd(fd, what, r->sha256, r->git_sha1);
                        r->has_sha256 = ret == 0 && (what & HASH_SHA256);
                        r->has_git_sha1 = ret == 0 && (what & HASH_GIT_SHA1);
                }
                close(fd);
                if (wp_send_report(WORKER_FD, job, r, ret) < 0)
                        _exit(2);
        }
}
