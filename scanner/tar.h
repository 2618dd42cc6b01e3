/* tar.h — a ustar/GNU/pax tar reader over a read-only buffer that walks members as
 * Python's tarfile does (torch's legacy tar checkpoints are read with it). Reports
 * structure problems and hands out bounded member slices; extracts nothing. */
#ifndef MODELGATE_TAR_H
#define MODELGATE_TAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

#define TAR_BLOCK_SIZE 512

/* Longest member name we assemble (PATH_MAX): a longer GNU or pax name cannot be
 * extracted by the loader on Linux anyway, and is reported as MALFORMED. */
#define TAR_NAME_MAX 4096

struct tar_member {
        const char *name;         /* raw bytes, NUL-terminated; valid until the next
                                   * tar_next(). May contain a NUL before name_len
                                   * when a pax record put one there. */
        size_t name_len;
        const uint8_t *link;      /* link target of '1'/'2' members, raw, not terminated */
        size_t link_len;
        char type;                /* typeflag; '\0' is reported as '0', and as '5'
                                   * when the name ends in '/' (old V7 directories) */
        bool is_file;             /* tarfile.extractfile() would return its data:
                                   * regular, contiguous, sparse or unknown types */
        uint64_t size;
        const uint8_t *data;      /* `size` bytes inside the buffer; NULL when size is 0 */
        uint64_t header_offset;   /* of the first header of this member (long-name
                                   * and pax headers included) */
};

struct tar_reader {
        struct scan_ctx *ctx;
        const uint8_t *buf;
        size_t len;
        size_t pos;               /* next header */
        bool done;
        char name[TAR_NAME_MAX + 1];
};

/* The "ustar" magic at offset 257, or a V7 header whose checksum is right. */
bool tar_sniff(const uint8_t *buf, size_t len);

/* Starts reading [buf, buf+len); findings go to ctx. Returns 0. */
int tar_open(struct scan_ctx *ctx, const uint8_t *buf, size_t len, struct tar_reader *ret);

/* The next member: 1 with *ret filled in, 0 at the end of the archive (first zero
 * block or end of buffer, as tarfile stops), -EBADMSG on a structural error (a
 * MALFORMED finding has been made; iteration is over). Names with ".." or absolute
 * paths and links pointing outside the archive are reported as ARCHIVE_TAMPERED,
 * sparse members as UNSUPPORTED_CONTAINER; those members are still returned. */
int tar_next(struct tar_reader *t, struct tar_member *ret);

#endif
