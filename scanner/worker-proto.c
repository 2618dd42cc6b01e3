/* worker-proto.c — encoding and strict decoding of worker messages. The decoder
 * assumes the worker may be compromised: every field is checked before it is
 * used, and nothing in a message is trusted to be terminated or in range. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker-proto.h"

static int send_msg(int fd, const struct wp_msg *m) {
        /* sendmsg, not send: the worker's filter allows only sendmsg/recvmsg. */
        struct iovec iov = { .iov_base = (void *) m, .iov_len = sizeof(*m) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;
        do
                n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return n == (ssize_t) sizeof(*m) ? 0 : -EIO;
}

static void msg_start(struct wp_msg *m, enum wp_type type, uint64_t job) {
        memset(m, 0, sizeof(*m));
        m->magic = WORKER_MAGIC;
        m->type = type;
        m->job = job;
}

int wp_send_report(int fd, uint64_t job, const struct scan_report *r, int error) {
        struct wp_msg m;
        int ret;

        for (uint32_t i = 0; i < r->n_globals; i++) {
                msg_start(&m, WP_GLOBAL, job);
                m.u.global = r->globals[i];
                if ((ret = send_msg(fd, &m)) < 0)
                        return ret;
        }
        for (uint32_t i = 0; i < r->n_findings; i++) {
                msg_start(&m, WP_FINDING, job);
                m.u.finding = r->findings[i];
                if ((ret = send_msg(fd, &m)) < 0)
                        return ret;
        }
        msg_start(&m, WP_DONE, job);
        m.u.done.error = error;
        m.u.done.format = r->format;
        m.u.done.size = r->size;
        m.u.done.n_globals = r->n_globals;
        m.u.done.n_findings = r->n_findings;
        m.u.done.globals_dropped = r->globals_dropped;
        m.u.done.findings_dropped = r->findings_dropped;
        m.u.done.has_license = r->has_license;
        m.u.done.has_sha256 = r->has_sha256;
        m.u.done.has_git_sha1 = r->has_git_sha1;
        memcpy(m.u.done.git_sha1, r->git_sha1, sizeof(m.u.done.git_sha1));
        memcpy(m.u.done.license, r->license, sizeof(m.u.done.license));
        memcpy(m.u.done.sha256, r->sha256, sizeof(m.u.done.sha256));
        return send_msg(fd, &m);
}

void wp_receiver_start(struct wp_receiver *rx, uint64_t job, struct scan_report *r) {
        memset(rx, 0, sizeof(*rx));
        rx->job = job;
        rx->report = r;
        report_init(r);
}

/* A string field: terminated inside its array and printable (report_escape's
 * output alphabet). */
static bool field_ok(const char *s, size_t size) {
        const char *end = memchr(s, '\0', size);
        return end && report_string_valid(s);
}

static bool hex_ok(const char *s, size_t n) {
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

int wp_receiver_feed(struct wp_receiver *rx, const void *msg, size_t len) {
        struct wp_msg m;
        struct scan_report *r = rx->report;

        if (rx->done || len != sizeof(m))
                return -EBADMSG;
        memcpy(&m, msg, sizeof(m));
        if (m.magic != WORKER_MAGIC || m.job != rx->job)
                return -EBADMSG;

        switch (m.type) {
        case WP_GLOBAL: {
                const struct report_global *g = &m.u.global;
                if (rx->got_globals >= REPORT_GLOBALS_MAX || g->via >= _VIA_MAX ||
                    !field_ok(g->module, sizeof(g->module)) || !field_ok(g->qualname, sizeof(g->qualname)) ||
                    !field_ok(g->member, sizeof(g->member)) || !g->module[0] || !g->qualname[0] ||
                    strpbrk(g->module, ": ") || strpbrk(g->qualname, ": "))
                        return -EBADMSG;
                r->globals[rx->got_globals++] = *g;
                return 0;
        }
        case WP_FINDING: {
                const struct finding *f = &m.u.finding;
                if (rx->got_findings >= REPORT_FINDINGS_MAX || f->rule >= _RULE_MAX || f->severity >= _SEV_MAX ||
                    f->via >= _VIA_MAX || !field_ok(f->global, sizeof(f->global)) ||
                    !field_ok(f->member, sizeof(f->member)) || !field_ok(f->message, sizeof(f->message)))
                        return -EBADMSG;
                r->findings[rx->got_findings++] = *f;
                return 0;
        }
        case WP_DONE: {
                const struct wp_done *d = &m.u.done;
                if (d->n_globals != rx->got_globals || d->n_findings != rx->got_findings ||
                    d->format >= _FMT_MAX || d->has_license > 1 || d->has_sha256 > 1 ||
                    !field_ok(d->license, sizeof(d->license)) || !memchr(d->sha256, '\0', sizeof(d->sha256)) ||
                    (d->has_sha256 && !hex_ok(d->sha256, 64)) || d->has_git_sha1 > 1 ||
                    !memchr(d->git_sha1, '\0', sizeof(d->git_sha1)) || (d->has_git_sha1 && !hex_ok(d->git_sha1, 40)) || d->error > 0 || d->error < -4095)
                        return -EBADMSG;
                r->n_globals = rx->got_globals;
                r->n_findings = rx->got_findings;
                r->globals_dropped = d->globals_dropped;
                r->findings_dropped = d->findings_dropped;
                r->format = d->format;
                r->size = d->size;
                r->has_license = d->has_license;
                memcpy(r->license, d->license, sizeof(r->license));
                r->has_sha256 = d->has_sha256;
                memcpy(r->sha256, d->sha256, sizeof(r->sha256));
                r->has_git_sha1 = d->has_git_sha1;
                memcpy(r->git_sha1, d->git_sha1, sizeof(r->git_sha1));
                rx->error = d->error;
                rx->done = true;
                return 1;
        }
        default:
                return -EBADMSG;
        }
}

int wp_send_request(int sock, uint64_t job, uint32_t flags, int file_fd) {
        struct wp_request req = { .magic = WORKER_MAGIC, .type = WP_REQUEST, .job = job, .flags = flags };
        struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req) };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c;
        ssize_t n;

        memset(&control, 0, sizeof(control));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &file_fd, sizeof(int));
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return n == (ssize_t) sizeof(req) ? 0 : -EIO;
}

int wp_recv_request(int sock, uint64_t *ret_job, uint32_t *ret_flags, int *ret_fd) {
        struct wp_request req;
        struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req) };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
        int fd = -1;
        ssize_t n;

        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (n == 0)
                return 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                    c->cmsg_len == CMSG_LEN(sizeof(int))) {
                        if (fd >= 0) {
                                close(fd);
                                return -EBADMSG;
                        }
                        memcpy(&fd, CMSG_DATA(c), sizeof(int));
                }
        if (n != (ssize_t) sizeof(req) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || fd < 0 ||
            req.magic != WORKER_MAGIC || req.type != WP_REQUEST || (req.flags & ~WP_FLAGS_KNOWN)) {
                if (fd >= 0)
                        close(fd);
                return -EBADMSG;
        }
        *ret_job = req.job;
        *ret_flags = req.flags;
        *ret_fd = fd;
        return 1;
}
