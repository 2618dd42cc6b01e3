/* zip.h — a zip reader over a read-only buffer that reads as PyTorch's miniz reader
 * does: by the central directory, the local header only locating the data. It
 * reports every departure from a well-formed archive and extracts only on request. */
#ifndef MODELGATE_ZIP_H
#define MODELGATE_ZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

/* Entries a central directory may hold before the archive is refused. Real
 * checkpoints hold one member per tensor storage: tens of thousands at most. */
#define ZIP_ENTRIES_MAX (1u << 20)

/* Longest name PyTorch's reader can list: getAllRecords() copies names into a
 * MZ_ZIP_MAX_ARCHIVE_FILENAME_SIZE (512) buffer and silently truncates longer ones. */
#define ZIP_NAME_LEN_MAX 511

#define ZIP_METHOD_STORED   0
#define ZIP_METHOD_DEFLATED 8

/* General-purpose flag bits that hide or patch content: encrypted, patched data,
 * strong encryption, masked local headers. A writer of model files sets none.
 * Bit 3 (data descriptor) is different: miniz, and so torch.save(), sets it on
 * every member it writes. It is reported only when the descriptor after the data
 * is missing or disagrees with the central directory. */
#define ZIP_FLAG_ENCRYPTED        0x0001
#define ZIP_FLAG_DATA_DESCRIPTOR  0x0008
#define ZIP_FLAG_PATCHED          0x0020
#define ZIP_FLAG_STRONG_ENCRYPTION 0x0040
#define ZIP_FLAG_MASKED_HEADERS   0x2000
#define ZIP_FLAGS_SUSPICIOUS (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_PATCHED | ZIP_FLAG_STRONG_ENCRYPTION | \
                              ZIP_FLAG_MASKED_HEADERS)

struct zip_entry {
        const uint8_t *name;      /* raw bytes inside the central directory; not NUL-terminated */
        uint16_t name_len;
        uint16_t method, flags;   /* from the central directory, as the loader uses them */
        uint32_t crc32;
        uint64_t comp_size, size;
        uint64_t local_offset, data_offset;
        uint64_t extent_end;      /* end of data (and data descriptor) in the file */
        bool readable;            /* local header found and data inside the file */
};

struct zip_reader {
        const uint8_t *buf;
        size_t len;
        struct zip_entry *entries;
        size_t n_entries;
        uint64_t first_local_offset;  /* bytes before the first member: prepended data */
        bool zip64;
};

/* Reads the directory of [buf, buf+len). Findings (MALFORMED, ARCHIVE_TAMPERED,
 * UNSUPPORTED_CONTAINER) go to ctx, naming the member. Returns 0 with *ret filled
 * in, or -EBADMSG when there is no usable central directory (a MALFORMED finding
 * has been made), -E2BIG beyond ZIP_ENTRIES_MAX (finding made), -ENOMEM. */
int zip_open(struct scan_ctx *ctx, const uint8_t *buf, size_t len, struct zip_reader *ret);

/* A zip archive that does not start at byte 0 but ends the file, as Python's
 * zipfile finds one (zipfile.is_zipfile, used by Keras 3 to open .keras files):
 * the end record in the last 64 KiB, and a central directory where it says, once
 * shifted by the bytes before the archive. Reads only the end of the file. Returns
 * true with *ret_start, the offset where the archive's own offsets begin (> 0). */
bool zip_find_appended(const uint8_t *buf, size_t len, size_t *ret_start);
void zip_close(struct zip_reader *z);

static inline size_t zip_count(const struct zip_reader *z) {
        return z->n_entries;
}

static inline const struct zip_entry *zip_get(const struct zip_reader *z, size_t i) {
        return i < z->n_entries ? &z->entries[i] : NULL;
}

/* The first entry whose name equals `name`, compared without regard to ASCII case
 * as miniz's mz_zip_reader_locate_file() does. NULL when there is none. */
const struct zip_entry *zip_find(const struct zip_reader *z, const char *name);

/* The entry's name escaped with report_escape(), and the same joined to the
 * context's member ("outer/name") for findings and for ctx->member. */
void zip_entry_name(const struct zip_entry *e, char ret[static REPORT_MEMBER_MAX]);
void zip_entry_member(const struct scan_ctx *ctx, const struct zip_entry *e,
                      char ret[static REPORT_MEMBER_MAX]);

enum zip_read_result {
        ZIP_READ_PREFIX = 0,      /* stopped at `limit`: the member is longer */
        ZIP_READ_WHOLE = 1,       /* the whole member; its CRC-32 has been checked */
        ZIP_READ_BROKEN = 2,      /* the deflate stream is corrupt or cut short: what
                                   * inflated before that is returned, MALFORMED made */
};

/* Reads at most `limit` bytes of the member's uncompressed data. Stored members
 * are returned in place (*ret_owned = NULL); deflated ones are inflated into a
 * buffer the caller frees (*ret_owned), never larger than `limit` whatever the
 * directory claims. A CRC-32 or size mismatch is reported when the whole member
 * was read. Returns an enum zip_read_result, or -EBADMSG for an entry that is not
 * readable, -EOPNOTSUPP for an unknown method (both already reported), -ENOMEM. */
int zip_read(struct scan_ctx *ctx, const struct zip_reader *z, const struct zip_entry *e,
             size_t limit, const uint8_t **ret_data, size_t *ret_len, uint8_t **ret_owned);

#endif
