/* lfs.h — Git LFS pointer files (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md):
 * the few text lines git leaves in place of a model when the LFS content was never
 * fetched. Recognised under any name; the pointer is reported, never followed. */
#ifndef MODELGATE_LFS_H
#define MODELGATE_LFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

/* git-lfs treats a blob of this many bytes or more as content, never as a pointer
 * (blobSizeCutoff in lfs/pointer.go). */
#define LFS_POINTER_MAX 1024

/* Parses a pointer the way git-lfs decodes one: surrounding whitespace trimmed,
 * lines ending in "\n" or "\r\n", blank lines skipped; "version <url>" first (the
 * released, the pre-release "hawser" and the alpha "git-media" URLs), then any
 * "ext-<digit>-<name> <value>" extension lines, then "oid sha256:<64 hex>", then
 * "size <decimal int64>", nothing else. On success writes the oid as 64 lowercase
 * hex digits plus NUL and the size; on failure leaves them untouched. */
bool lfs_pointer_parse(const uint8_t *buf, size_t len, char oid[65], uint64_t *size);

/* Cheap test for the scanner's sniffing: shorter than LFS_POINTER_MAX and starting
 * (after leading whitespace) with "version " and one of the known spec URLs. A file
 * that passes this but not lfs_pointer_parse() is a damaged pointer: still not the
 * model. */
bool lfs_sniff(const uint8_t *buf, size_t len);

/* Reports RULE_LFS_POINTER (critical) with the oid and size when known. */
void lfs_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len);

#endif
