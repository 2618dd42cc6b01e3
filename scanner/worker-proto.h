/* worker-proto.h — the protocol between a front end (the CLI, modelgated) and a
 * sandboxed scanner worker. One SOCK_SEQPACKET socket on fd WORKER_FD; every
 * message is a fixed-size struct; the receiver rejects a wrong size, a wrong
 * magic, an unexpected type or job id, an unterminated or unprintable string and
 * an out-of-range enum, and then treats the worker as broken (kill, replace). */
#ifndef MODELGATE_WORKER_PROTO_H
#define MODELGATE_WORKER_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "report.h"

#define WORKER_FD 3
#define WORKER_MAGIC UINT32_C(0x4d475732)   /* "MGW2": bump on any layout change */

enum wp_type {
        WP_REQUEST = 1,         /* front end -> worker, with one fd in SCM_RIGHTS */
        WP_GLOBAL,              /* worker -> front end, one per report global */
        WP_FINDING,             /* worker -> front end, one per finding */
        WP_DONE,                /* worker -> front end, last message of a job */
};

/* Request flags. */
#define WP_FLAG_SHA256     UINT32_C(0x1)   /* also hash the file (report.sha256) */
#define WP_FLAG_HASH_ONLY  UINT32_C(0x2)   /* with a hash flag: hash, do not scan again */
#define WP_FLAG_GIT_SHA1   UINT32_C(0x4)   /* also the git blob id (report.git_sha1) */
#define WP_FLAGS_KNOWN     (WP_FLAG_SHA256 | WP_FLAG_HASH_ONLY | WP_FLAG_GIT_SHA1)

struct wp_request {
        uint32_t magic;
        uint32_t type;          /* WP_REQUEST */
        uint64_t job;
        uint32_t flags;         /* WP_FLAG_* */
        uint32_t reserved;
};

struct wp_done {
        int32_t error;          /* 0, or -errno when the fd could not be scanned */
        uint8_t format;
        uint8_t has_license;
        uint8_t has_sha256;
        uint8_t has_git_sha1;
        uint64_t size;
        uint32_t n_globals;     /* must equal the WP_GLOBAL messages of this job */
        uint32_t n_findings;    /* must equal the WP_FINDING messages of this job */
        uint32_t globals_dropped;
        uint32_t findings_dropped;
        char license[REPORT_LICENSE_MAX];
        char sha256[65];
        char git_sha1[41];
};

struct wp_msg {
        uint32_t magic;
        uint32_t type;
        uint64_t job;
        union {
                struct report_global global;
                struct finding finding;
                struct wp_done done;
        } u;
};

/* Worker side: sends the report for `job` as WP_GLOBAL..., WP_FINDING..., WP_DONE.
 * Returns 0 or -errno. */
int wp_send_report(int fd, uint64_t job, const struct scan_report *r, int error);

/* Front-end side: a job's incoming messages are folded into a report. */
struct wp_receiver {
        uint64_t job;
        struct scan_report *report;
        uint32_t got_globals, got_findings;
        int error;              /* the worker's WP_DONE error */
        bool done;
};

void wp_receiver_start(struct wp_receiver *rx, uint64_t job, struct scan_report *r);

/* Validates and applies one received message of `len` bytes. Returns 1 when the
 * job is complete, 0 when more is expected, -EBADMSG on any protocol violation. */
int wp_receiver_feed(struct wp_receiver *rx, const void *msg, size_t len);

/* Sends a request with the file fd. */
int wp_send_request(int sock, uint64_t job, uint32_t flags, int file_fd);

/* Worker side: receives a request; returns 1 with *ret_fd set, 0 on EOF (the front
 * end closed the socket), -EBADMSG on a malformed request. */
int wp_recv_request(int sock, uint64_t *ret_job, uint32_t *ret_flags, int *ret_fd);

#endif
