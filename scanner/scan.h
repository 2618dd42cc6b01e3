/* scan.h — the scanner's entry points and the context every format parser gets.
 * Parsers see only (buffer, length) slices of a read-only mapping of the file; they
 * never open anything. Policy is not known here: the scanner reports facts. */
#ifndef MODELGATE_SCAN_H
#define MODELGATE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"

/* Containers inside containers: a zip member that is itself a zip, a pickle inside
 * a pickle. Three levels covers every real layout (npz -> npy -> pickle -> nested). */
#define SCAN_DEPTH_MAX 4

/* Bytes a single compressed member may inflate to before the scan gives up on it
 * (with a finding). Pickles in real checkpoints are < 64 MiB; tensors are not
 * inflated at all, only their headers are. */
#define SCAN_INFLATE_MAX ((size_t) 512 << 20)

struct scan_ctx {
        struct scan_report *report;
        char member[REPORT_MEMBER_MAX];   /* where we are, "" at top level */
        unsigned depth;
};

/* Top level: sniffs the content of [buf, buf+len) and dispatches to a parser. */
void scan_buffer(struct scan_report *r, const uint8_t *buf, size_t len);

/* Maps fd read-only and scans it. Returns 0, or -errno when the fd cannot be
 * mapped (the caller reports SCAN_ERROR). */
int scan_fd(int fd, struct scan_report *r);

/* Sniffs and scans a nested piece (an archive member, an embedded pickle) under
 * the member name `name`, one level deeper. Returns the detected format. */
enum mg_format scan_nested(struct scan_ctx *ctx, const char *name, const uint8_t *buf, size_t len);

/* Enters a member (name appended to ctx->member with '/', depth + 1); the previous
 * member is kept in saved for scan_member_leave(). Returns false (and reports) when
 * nesting is too deep. */
bool scan_member_enter(struct scan_ctx *ctx, const char *name, char saved[REPORT_MEMBER_MAX]);
void scan_member_leave(struct scan_ctx *ctx, const char saved[REPORT_MEMBER_MAX]);

/* Inflates a zlib or gzip stream into a malloc'd buffer of at most `limit` bytes.
 * Returns 0 (with *ret_truncated when the limit cut it), -EBADMSG for a corrupt or
 * unfinished stream, -ENOMEM. */
int scan_inflate(const uint8_t *buf, size_t len, size_t limit, uint8_t **ret, size_t *ret_len,
                 bool *ret_truncated);

/* Content sniffing only, no scan. */
enum mg_format scan_sniff(const uint8_t *buf, size_t len);

/* Shorthand for report_add_finding() with the context's member. */
#define scan_finding(ctx, rule, sev, ...) \
        report_add_finding((ctx)->report, (rule), (sev), VIA_NONE, (ctx)->member, NULL, __VA_ARGS__)

#endif
