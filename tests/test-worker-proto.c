/* test-worker-proto.c — the front end's decoder of worker messages treats the
 * worker as hostile: a round trip works, and every malformed message (size, magic,
 * job id, unterminated or unprintable string, enum out of range, counts that do
 * not add up, anything after DONE) is refused. Requests need exactly one fd. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tap.h"
#include "worker-proto.h"

static struct scan_report *sample_report(void) {
        static struct scan_report r;
        report_init(&r);
        r.format = FMT_PICKLE;
        r.size = 42;
        report_add_global(&r, (const uint8_t *) "os", 2, (const uint8_t *) "system", 6, VIA_GLOBAL, "data.pkl");
        report_add_finding(&r, RULE_MALFORMED, SEV_HIGH, VIA_NONE, "data.pkl", NULL, "pickle: truncated at %d", 7);
        return &r;
}

static void round_trip_over_a_socket(void) {
        int sv[2];
        struct wp_msg m;
        struct wp_receiver rx;
        static struct scan_report got;
        TAP_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
        TAP_CHECK(wp_send_report(sv[0], 9, sample_report(), 0) == 0);
        wp_receiver_start(&rx, 9, &got);
        int r = 0;
        while (r == 0) {
                ssize_t n = recv(sv[1], &m, sizeof(m), 0);
                TAP_CHECK(n > 0);
                r = wp_receiver_feed(&rx, &m, (size_t) n);
        }
        TAP_CHECK(r == 1);
        TAP_CHECK(got.n_globals == 1 && got.n_findings == 1 && got.format == FMT_PICKLE && got.size == 42);
        TAP_CHECK_STR(got.globals[0].qualname, "system");
        TAP_CHECK_STR(got.findings[0].message, "pickle: truncated at 7");
}

/* Feeds one crafted message to a fresh receiver for job 1. */
static int feed(const struct wp_msg *m, size_t len) {
        struct wp_receiver rx;
        static struct scan_report r;
        wp_receiver_start(&rx, 1, &r);
        return wp_receiver_feed(&rx, m, len);
}

static struct wp_msg good_global(void) {
        struct wp_msg m;
        memset(&m, 0, sizeof(m));
        m.magic = WORKER_MAGIC;
        m.type = WP_GLOBAL;
        m.job = 1;
        strcpy(m.u.global.module, "os");
        strcpy(m.u.global.qualname, "system");
        m.u.global.via = VIA_GLOBAL;
        return m;
}

static void a_good_message_is_accepted(void) {
        struct wp_msg m = good_global();
        TAP_CHECK(feed(&m, sizeof(m)) == 0);
}

static void wrong_size_is_refused(void) {
        struct wp_msg m = good_global();
        TAP_CHECK(feed(&m, sizeof(m) - 1) == -EBADMSG);
}

static void wrong_magic_or_job_is_refused(void) {
        struct wp_msg m = good_global();
        m.magic ^= 1;
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
        m = good_global();
        m.job = 2;
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
        m = good_global();
        m.type = 77;
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
}

static void unterminated_string_is_refused(void) {
        struct wp_msg m = good_global();
        memset(m.u.global.module, 'a', sizeof(m.u.global.module));
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
}

static void unprintable_or_separator_in_name_is_refused(void) {
        struct wp_msg m = good_global();
        strcpy(m.u.global.module, "o\ns");
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
        m = good_global();
        strcpy(m.u.global.qualname, "a:b");
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
        m = good_global();
        strcpy(m.u.global.member, "\x1b[31mred");
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
        m = good_global();
        strcpy(m.u.global.member, "bad\xff");
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
}

static void enum_out_of_range_is_refused(void) {
        struct wp_msg m = good_global();
        m.u.global.via = _VIA_MAX;
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
        memset(&m.u, 0, sizeof(m.u));
        m.type = WP_FINDING;
        m.u.finding.rule = _RULE_MAX;
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
        m.u.finding.rule = RULE_MALFORMED;
        m.u.finding.severity = _SEV_MAX;
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
}

static void done_with_wrong_counts_is_refused(void) {
        struct wp_msg m;
        memset(&m, 0, sizeof(m));
        m.magic = WORKER_MAGIC;
        m.type = WP_DONE;
        m.job = 1;
        m.u.done.n_globals = 1;   /* none were sent */
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
        m.u.done.n_globals = 0;
        m.u.done.format = _FMT_MAX;
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
        m.u.done.format = FMT_PICKLE;
        m.u.done.has_sha256 = 1;
        strcpy(m.u.done.sha256, "not-hex");
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
        m.u.done.has_sha256 = 0;
        m.u.done.error = 5;   /* errors are negative errno values */
        TAP_CHECK(feed(&m, sizeof(m)) == -EBADMSG);
        m.u.done.error = 0;
        TAP_CHECK(feed(&m, sizeof(m)) == 1);
}

static void anything_after_done_is_refused(void) {
        struct wp_receiver rx;
        static struct scan_report r;
        struct wp_msg m;
        memset(&m, 0, sizeof(m));
        m.magic = WORKER_MAGIC;
        m.type = WP_DONE;
        m.job = 1;
        wp_receiver_start(&rx, 1, &r);
        TAP_CHECK(wp_receiver_feed(&rx, &m, sizeof(m)) == 1);
        struct wp_msg g = good_global();
        TAP_CHECK(wp_receiver_feed(&rx, &g, sizeof(g)) == -EBADMSG);
}

static void too_many_globals_are_refused(void) {
        struct wp_receiver rx;
        static struct scan_report r;
        struct wp_msg g = good_global();
        wp_receiver_start(&rx, 1, &r);
        for (int i = 0; i < REPORT_GLOBALS_MAX; i++)
                TAP_CHECK(wp_receiver_feed(&rx, &g, sizeof(g)) == 0);
        TAP_CHECK(wp_receiver_feed(&rx, &g, sizeof(g)) == -EBADMSG);
}

static void request_carries_exactly_one_fd(void) {
        int sv[2];
        uint64_t job = 0;
        uint32_t flags = 9;
        int fd = -1;
        TAP_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
        int file = open("/dev/null", O_RDONLY);
        TAP_CHECK(file >= 0);
        TAP_CHECK(wp_send_request(sv[0], 5, WP_FLAG_SHA256, file) == 0);
        TAP_CHECK(wp_recv_request(sv[1], &job, &flags, &fd) == 1);
        TAP_CHECK(job == 5 && flags == WP_FLAG_SHA256 && fd >= 0 && fcntl(fd, F_GETFD) & FD_CLOEXEC);
        /* unknown flags are refused */
        TAP_CHECK(wp_send_request(sv[0], 7, 0x80, file) == 0);
        TAP_CHECK(wp_recv_request(sv[1], &job, &flags, &fd) == -EBADMSG);
        /* a request without an fd */
        struct wp_request req = { .magic = WORKER_MAGIC, .type = WP_REQUEST, .job = 6 };
        TAP_CHECK(send(sv[0], &req, sizeof(req), 0) == (ssize_t) sizeof(req));
        TAP_CHECK(wp_recv_request(sv[1], &job, &flags, &fd) == -EBADMSG);
        /* EOF ends the worker cleanly */
        close(sv[0]);
        TAP_CHECK(wp_recv_request(sv[1], &job, &flags, &fd) == 0);
}

TAP_MAIN(
        TAP_CASE(round_trip_over_a_socket),
        TAP_CASE(a_good_message_is_accepted),
        TAP_CASE(wrong_size_is_refused),
        TAP_CASE(wrong_magic_or_job_is_refused),
        TAP_CASE(unterminated_string_is_refused),
        TAP_CASE(unprintable_or_separator_in_name_is_refused),
        TAP_CASE(enum_out_of_range_is_refused),
        TAP_CASE(done_with_wrong_counts_is_refused),
        TAP_CASE(anything_after_done_is_refused),
        TAP_CASE(too_many_globals_are_refused),
        TAP_CASE(request_carries_exactly_one_fd),
)
