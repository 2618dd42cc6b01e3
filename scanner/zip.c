/* zip.c — reads a zip's end record, central directory and local headers the way
 * PyTorch's miniz reader does, reporting every departure from a well-formed archive.
 * Reads member data only in zip_read(), and never inflates past the caller's limit. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* qsort_r */
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cursor.h"
#include "zip.h"

#define ZIP_EOCD_SIG        0x06054b50u
#define ZIP_EOCD_SIZE       22
#define ZIP64_LOCATOR_SIG   0x07064b50u
#define ZIP64_LOCATOR_SIZE  20
#define ZIP64_EOCD_SIG      0x06064b50u
#define ZIP64_EOCD_SIZE     56
#define ZIP_CDH_SIG         0x02014b50u
#define ZIP_CDH_SIZE        46
#define ZIP_LFH_SIG         0x04034b50u
#define ZIP_DD_SIG          0x08074b50u
#define ZIP_EXTRA_ZIP64     0x0001
#define ZIP_EXTRA_UNICODE_PATH 0x7075
#define ZIP_U32_MAX         0xffffffffu

/* The end record is the last 22 bytes plus a comment of at most 65535 bytes; miniz
 * searches no further back than that, so neither do we. */
#define ZIP_EOCD_SEARCH_MAX ((size_t) ZIP_EOCD_SIZE + UINT16_MAX)

/* Deflate input is fed in pieces that fit zlib's 32-bit avail_in. */
#define ZIP_INFLATE_IN_CHUNK ((size_t) 1 << 30)

/* First output buffer of an inflate, grown by doubling up to the caller's limit:
 * a directory that claims a huge size cannot make us allocate it up front. */
#define ZIP_INFLATE_FIRST_ALLOC ((size_t) 1 << 20)

static void entry_finding(struct scan_ctx *ctx, const struct zip_entry *e, enum mg_rule rule,
                          enum mg_severity sev, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static void entry_finding(struct scan_ctx *ctx, const struct zip_entry *e, enum mg_rule rule,
                          enum mg_severity sev, const char *fmt, ...) {
        char member[REPORT_MEMBER_MAX], msg[REPORT_MESSAGE_MAX];
        va_list ap;

        zip_entry_member(ctx, e, member);
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        report_add_finding(ctx->report, rule, sev, VIA_NONE, member, NULL, "%s", msg);
}

void zip_entry_name(const struct zip_entry *e, char ret[static REPORT_MEMBER_MAX]) {
        report_escape(ret, REPORT_MEMBER_MAX, e->name, e->name_len, NULL);
}

void zip_entry_member(const struct scan_ctx *ctx, const struct zip_entry *e,
                      char ret[static REPORT_MEMBER_MAX]) {
        size_t o = 0;

        if (ctx && ctx->member[0]) {
                o = strnlen(ctx->member, REPORT_MEMBER_MAX - 1);
                memcpy(ret, ctx->member, o);
                if (o + 1 < REPORT_MEMBER_MAX)
                        ret[o++] = '/';
        }
        /* Escaping into what is left truncates at a character boundary. */
        report_escape(ret + o, REPORT_MEMBER_MAX - o, e->name, e->name_len, NULL);
}

static int ascii_lower(int c) {
        return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* miniz compares names with MZ_TOLOWER on each byte. */
static int name_casecmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
        size_t n = alen < blen ? alen : blen;
        for (size_t i = 0; i < n; i++) {
                int d = ascii_lower(a[i]) - ascii_lower(b[i]);
                if (d)
                        return d;
        }
        return alen < blen ? -1 : alen > blen;
}

const struct zip_entry *zip_find(const struct zip_reader *z, const char *name) {
        size_t n = strlen(name);

        for (size_t i = 0; i < z->n_entries; i++)
                if (name_casecmp(z->entries[i].name, z->entries[i].name_len,
                                 (const uint8_t *) name, n) == 0)
                        return &z->entries[i];
        return NULL;
}

/* Finds extra field `id` in an extra block; *ret covers its data. A block whose
 * last field runs past its end is -EBADMSG; trailing bytes shorter than a field
 * header are ignored, as miniz does. */
static int extra_find(const uint8_t *extra, size_t len, uint16_t id, struct cursor *ret) {
        struct cursor c = cursor_make(extra, len);

        while (cursor_left(&c) >= 4) {
                uint16_t fid = 0, flen = 0;
                const uint8_t *d;

                /* Four bytes are left: these two reads cannot fail. */
                (void) cursor_le16(&c, &fid);
                (void) cursor_le16(&c, &flen);
                if (cursor_take(&c, flen, &d) < 0)
                        return -EBADMSG;
                if (fid == id) {
                        *ret = cursor_make(d, flen);
                        return 0;
                }
        }
        return -ENOENT;
}

/* The Info-ZIP Unicode Path field renames a member for the unzip tools that honour
 * it; a name there that differs from the header's is a second name for the member. */
static void check_unicode_path(struct scan_ctx *ctx, const struct zip_entry *e,
                               const uint8_t *extra, size_t len, const char *where) {
        struct cursor f;
        uint8_t version;
        uint32_t crc;
        char other[REPORT_MEMBER_MAX];
        const uint8_t *path;
        size_t n;

        if (extra_find(extra, len, ZIP_EXTRA_UNICODE_PATH, &f) < 0)
                return;
        if (cursor_u8(&f, &version) < 0 || cursor_le32(&f, &crc) < 0 || version != 1) {
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                              "zip: invalid Unicode path extra field in the %s", where);
                return;
        }
        n = cursor_left(&f);
        (void) cursor_take(&f, n, &path);
        if (n == e->name_len && memcmp(path, e->name, n) == 0)
                return;
        report_escape(other, sizeof(other), path, n, NULL);
        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                      "zip: the Unicode path extra field in the %s renames this member to \"%s\"",
                      where, other);
}

static void describe_flags(uint16_t flags, char *buf, size_t size) {
        static const struct {
                uint16_t bit;
                const char *what;
        } bits[] = {
                { ZIP_FLAG_ENCRYPTED, "encrypted" },
                { ZIP_FLAG_PATCHED, "patched data" },
                { ZIP_FLAG_STRONG_ENCRYPTION, "strong encryption" },
                { ZIP_FLAG_MASKED_HEADERS, "masked local headers" },
        };
        size_t o = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
                if (flags & bits[i].bit && o < size) {
                        int n = snprintf(buf + o, size - o, "%s%s", o ? ", " : "", bits[i].what);
                        if (n > 0)
                                o += (size_t) n;
                }
}

static const char *method_name(uint16_t method) {
        switch (method) {
        case 1: return "shrink";
        case 2: case 3: case 4: case 5: return "reduce";
        case 6: return "implode";
        case 9: return "deflate64";
        case 12: return "bzip2";
        case 14: return "lzma";
        case 93: return "zstd";
        case 95: return "xz";
        case 96: return "jpeg";
        case 97: return "wavpack";
        case 98: return "ppmd";
        case 99: return "aes-encrypted";
        default: return "unknown";
        }
}

/* Names a loader or an unpacking helper could resolve outside the archive, or that
 * different tools read differently. */
static void check_name(struct scan_ctx *ctx, const struct zip_entry *e) {
        const uint8_t *n = e->name;
        size_t len = e->name_len, start = 0;

        if (len == 0) {
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH, "zip: member with an empty name");
                return;
        }
        if (len > ZIP_NAME_LEN_MAX)
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                              "zip: name is %zu bytes; PyTorch's reader truncates names at %d",
                              len, ZIP_NAME_LEN_MAX);
        if (memchr(n, '\0', len))
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH, "zip: NUL byte in member name");
        if (memchr(n, '\\', len))
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH, "zip: backslash in member name");
        if (n[0] == '/' || n[0] == '\\')
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH, "zip: absolute member name");
        else if (len >= 2 && n[1] == ':' && ascii_lower(n[0]) >= 'a' && ascii_lower(n[0]) <= 'z')
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH, "zip: member name starts with a drive letter");

        for (size_t i = 0; i <= len; i++) {
                if (i < len && n[i] != '/' && n[i] != '\\')
                        continue;
                if (i - start == 2 && n[start] == '.' && n[start + 1] == '.') {
                        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: member name has a '..' component");
                        break;
                }
                start = i + 1;
        }
}

/* The data descriptor after a member with flag bit 3: an optional signature, the
 * CRC-32, then both sizes in 4 bytes, or 8 when the member is zip64 (miniz decides
 * by whether it wrote a zip64 extra field, so both widths are tried). Streaming
 * readers take the sizes from here; it must say what the central directory says. */
static void check_data_descriptor(struct scan_ctx *ctx, const struct zip_reader *z, struct zip_entry *e) {
        struct cursor d = cursor_make(z->buf, z->len), narrow, wide;
        uint32_t first, crc, c32, u32;
        uint64_t c64, u64;
        bool sig, ok32, ok64;

        if (cursor_seek(&d, (size_t) e->extent_end) < 0 || cursor_le32(&d, &first) < 0 ||
            first == ZIP_LFH_SIG || first == ZIP_CDH_SIG || first == ZIP64_EOCD_SIG || first == ZIP_EOCD_SIG) {
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                              "zip: flag bit 3 is set but no data descriptor follows the data");
                return;
        }
        sig = first == ZIP_DD_SIG;
        if (sig && cursor_le32(&d, &crc) < 0)
                crc = ~e->crc32;
        else if (!sig)
                crc = first;
        narrow = wide = d;
        ok32 = cursor_le32(&narrow, &c32) == 0 && cursor_le32(&narrow, &u32) == 0 &&
               c32 == e->comp_size && u32 == e->size;
        ok64 = cursor_le64(&wide, &c64) == 0 && cursor_le64(&wide, &u64) == 0 &&
               c64 == e->comp_size && u64 == e->size;
        if (crc != e->crc32 || (!ok32 && !ok64)) {
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                              "zip: data descriptor disagrees with the central directory (CRC-32 %08x)", crc);
                /* A signed descriptor is the member's, whatever it says: the
                 * layout check should not report its bytes again. */
                narrow = d;
                if (sig && cursor_skip(&narrow, 8) == 0)
                        e->extent_end = narrow.pos;
                return;
        }
        e->extent_end = ok32 ? narrow.pos : wide.pos;
}

/* Reads the local header of e and fills data_offset/extent_end/readable, comparing
 * what the local header says with the central directory. */
static void check_local_header(struct scan_ctx *ctx, const struct zip_reader *z, struct zip_entry *e) {
        struct cursor c = cursor_make(z->buf, z->len);
        uint32_t sig, lcrc, lcsize32, lusize32;
        uint16_t lneeded, lflags, lmethod, ltime, ldate, lname_len, lextra_len;
        const uint8_t *lname, *lextra;
        uint64_t lcsize, lusize;

        if (e->local_offset > z->len || cursor_seek(&c, (size_t) e->local_offset) < 0 ||
            cursor_le32(&c, &sig) < 0 || sig != ZIP_LFH_SIG) {
                entry_finding(ctx, e, RULE_MALFORMED, SEV_HIGH,
                              "zip: no local header at offset %llu", (unsigned long long) e->local_offset);
                return;
        }
        if (cursor_le16(&c, &lneeded) < 0 || cursor_le16(&c, &lflags) < 0 ||
            cursor_le16(&c, &lmethod) < 0 || cursor_le16(&c, &ltime) < 0 ||
            cursor_le16(&c, &ldate) < 0 || cursor_le32(&c, &lcrc) < 0 ||
            cursor_le32(&c, &lcsize32) < 0 || cursor_le32(&c, &lusize32) < 0 ||
            cursor_le16(&c, &lname_len) < 0 || cursor_le16(&c, &lextra_len) < 0 ||
            cursor_take(&c, lname_len, &lname) < 0 || cursor_take(&c, lextra_len, &lextra) < 0) {
                entry_finding(ctx, e, RULE_MALFORMED, SEV_HIGH,
                              "zip: local header at offset %llu runs past the end of the file",
                              (unsigned long long) e->local_offset);
                return;
        }
        e->data_offset = c.pos;
        if (e->comp_size > cursor_left(&c)) {
                entry_finding(ctx, e, RULE_MALFORMED, SEV_HIGH,
                              "zip: member data (%llu bytes at offset %llu) runs past the end of the file",
                              (unsigned long long) e->comp_size, (unsigned long long) e->data_offset);
                return;
        }
        e->readable = true;
        e->extent_end = e->data_offset + e->comp_size;

        if (lname_len != e->name_len || memcmp(lname, e->name, lname_len) != 0) {
                char other[REPORT_MEMBER_MAX];
                report_escape(other, sizeof(other), lname, lname_len, NULL);
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                              "zip: local header names this member \"%s\"", other);
        }
        if (lflags != e->flags)
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                              "zip: local header flags 0x%04x differ from the central directory's 0x%04x",
                              lflags, e->flags);
        if ((lflags | e->flags) & ZIP_FLAGS_SUSPICIOUS) {
                char what[128];
                describe_flags((lflags | e->flags) & ZIP_FLAGS_SUSPICIOUS, what, sizeof(what));
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                              "zip: general-purpose flags 0x%04x (%s)", lflags | e->flags, what);
        }
        if (lmethod != e->method)
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                              "zip: local header says compression method %u, central directory %u",
                              lmethod, e->method);
        check_unicode_path(ctx, e, lextra, lextra_len, "local header");

        lcsize = lcsize32;
        lusize = lusize32;
        if (lcsize32 == ZIP_U32_MAX || lusize32 == ZIP_U32_MAX) {
                struct cursor f;
                /* Local zip64 fields come in the order uncompressed, compressed. */
                if (extra_find(lextra, lextra_len, ZIP_EXTRA_ZIP64, &f) < 0 ||
                    (lusize32 == ZIP_U32_MAX && cursor_le64(&f, &lusize) < 0) ||
                    (lcsize32 == ZIP_U32_MAX && cursor_le64(&f, &lcsize) < 0)) {
                        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: local header sizes are 0xffffffff without a zip64 extra field");
                        return;
                }
        }

        bool descriptor = (lflags | e->flags) & ZIP_FLAG_DATA_DESCRIPTOR;
        if (!(descriptor && lcrc == 0 && lcsize == 0 && lusize == 0)) {
                /* With a data descriptor the local fields are zero; the
                 * descriptor itself is checked below. */
                if (lcrc != e->crc32)
                        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: local header CRC-32 %08x, central directory %08x",
                                      lcrc, e->crc32);
                if (lcsize != e->comp_size || lusize != e->size)
                        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: local header sizes %llu/%llu, central directory %llu/%llu",
                                      (unsigned long long) lcsize, (unsigned long long) lusize,
                                      (unsigned long long) e->comp_size, (unsigned long long) e->size);
        }

        if (descriptor)
                check_data_descriptor(ctx, z, e);
}

struct end_record {
        size_t pos;                 /* of the 32-bit end record */
        size_t cd_end_expected;     /* where the directory should stop */
        uint32_t disk, cd_disk;
        uint64_t n_disk, n_total, cd_size, cd_offset;
        uint16_t comment_len;
        bool zip64;
};

static int end_record_find(const uint8_t *buf, size_t len, size_t *ret) {
        struct cursor c = cursor_make(buf, len);
        size_t lowest = len > ZIP_EOCD_SEARCH_MAX ? len - ZIP_EOCD_SEARCH_MAX : 0;

        if (len < ZIP_EOCD_SIZE)
                return -ENODATA;
        /* The last signature with room for a whole record after it, as miniz takes. */
        for (size_t pos = len - ZIP_EOCD_SIZE + 1; pos-- > lowest;) {
                uint32_t sig;
                if (cursor_seek(&c, pos) < 0 || cursor_le32(&c, &sig) < 0)
                        return -ENODATA;
                if (sig == ZIP_EOCD_SIG) {
                        *ret = pos;
                        return 0;
                }
        }
        return -ENODATA;
}

bool zip_find_appended(const uint8_t *buf, size_t len, size_t *ret_start) {
        struct cursor c = cursor_make(buf, len);
        uint32_t cd_size, cd_offset, sig;
        size_t pos, cd_start;

        if (end_record_find(buf, len, &pos) < 0 || cursor_seek(&c, pos + 12) < 0 || cursor_le32(&c, &cd_size) < 0 ||
            cursor_le32(&c, &cd_offset) < 0)
                return false;
        if (cd_size > pos)
                return false;
        cd_start = pos - cd_size;
        /* zip64 archives (offset 0xffffffff) at an offset are left to the zip
         * reader's own checks when the file starts with one; here, the plain case. */
        if (cd_offset == UINT32_MAX || cd_start <= cd_offset)
                return false;
        if (cursor_seek(&c, cd_start) < 0 || cursor_le32(&c, &sig) < 0 || (sig != ZIP_CDH_SIG && cd_size > 0))
                return false;
        *ret_start = cd_start - cd_offset;
        return true;
}

static void archive_finding(struct scan_ctx *ctx, enum mg_rule rule, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void archive_finding(struct scan_ctx *ctx, enum mg_rule rule, const char *fmt, ...) {
        char msg[REPORT_MESSAGE_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        scan_finding(ctx, rule, SEV_HIGH, "%s", msg);
}

static int end_record_read(struct scan_ctx *ctx, const uint8_t *buf, size_t len, struct end_record *ret) {
        struct cursor c = cursor_make(buf, len);
        struct end_record er = { 0 };
        uint16_t disk16, cd_disk16, n_disk16, n_total16;
        uint32_t cd_size32, cd_offset32, sig;

        if (end_record_find(buf, len, &er.pos) < 0) {
                archive_finding(ctx, RULE_MALFORMED, "zip: no end of central directory record in the last 64 KiB");
                return -EBADMSG;
        }
        /* end_record_find() left 22 bytes at pos; these reads cannot fail. */
        if (cursor_seek(&c, er.pos + 4) < 0 || cursor_le16(&c, &disk16) < 0 ||
            cursor_le16(&c, &cd_disk16) < 0 || cursor_le16(&c, &n_disk16) < 0 ||
            cursor_le16(&c, &n_total16) < 0 || cursor_le32(&c, &cd_size32) < 0 ||
            cursor_le32(&c, &cd_offset32) < 0 || cursor_le16(&c, &er.comment_len) < 0)
                return -EBADMSG;
        er.disk = disk16;
        er.cd_disk = cd_disk16;
        er.n_disk = n_disk16;
        er.n_total = n_total16;
        er.cd_size = cd_size32;
        er.cd_offset = cd_offset32;
        er.cd_end_expected = er.pos;

        if (er.pos >= ZIP64_LOCATOR_SIZE && cursor_seek(&c, er.pos - ZIP64_LOCATOR_SIZE) == 0 &&
            cursor_le32(&c, &sig) == 0 && sig == ZIP64_LOCATOR_SIG) {
                uint32_t loc_disk, total_disks, made_needed, disk, cd_disk;
                uint64_t z64_offset, rec_size, n_disk, n_total, cd_size, cd_offset;

                if (cursor_le32(&c, &loc_disk) < 0 || cursor_le64(&c, &z64_offset) < 0 ||
                    cursor_le32(&c, &total_disks) < 0)
                        return -EBADMSG;
                if (len < ZIP64_EOCD_SIZE || z64_offset > len - ZIP64_EOCD_SIZE) {
                        archive_finding(ctx, RULE_MALFORMED,
                                        "zip: zip64 locator points outside the file (offset %llu)",
                                        (unsigned long long) z64_offset);
                        return -EBADMSG;
                }
                if (cursor_seek(&c, (size_t) z64_offset) < 0 || cursor_le32(&c, &sig) < 0 ||
                    sig != ZIP64_EOCD_SIG) {
                        /* miniz and Python both fall back to the 32-bit record. */
                        archive_finding(ctx, RULE_ARCHIVE_TAMPERED,
                                        "zip: zip64 locator points at no zip64 end record (offset %llu)",
                                        (unsigned long long) z64_offset);
                } else {
                        if (cursor_le64(&c, &rec_size) < 0 || cursor_le32(&c, &made_needed) < 0 ||
                            cursor_le32(&c, &disk) < 0 || cursor_le32(&c, &cd_disk) < 0 ||
                            cursor_le64(&c, &n_disk) < 0 || cursor_le64(&c, &n_total) < 0 ||
                            cursor_le64(&c, &cd_size) < 0 || cursor_le64(&c, &cd_offset) < 0)
                                return -EBADMSG;
                        if (rec_size < ZIP64_EOCD_SIZE - 12) {
                                archive_finding(ctx, RULE_MALFORMED, "zip: zip64 end record is too short");
                                return -EBADMSG;
                        }
                        if (total_disks != 1 || loc_disk != 0)
                                archive_finding(ctx, RULE_ARCHIVE_TAMPERED,
                                                "zip: zip64 locator claims %u disks", total_disks);
                        /* Python's zipfile does not follow the locator: it reads the
                         * record right before it. */
                        if (z64_offset + ZIP64_EOCD_SIZE != er.pos - ZIP64_LOCATOR_SIZE)
                                archive_finding(ctx, RULE_ARCHIVE_TAMPERED,
                                                "zip: zip64 end record is not immediately before its locator");
                        er.zip64 = true;
                        er.disk = disk;
                        er.cd_disk = cd_disk;
                        er.n_disk = n_disk;
                        er.n_total = n_total;
                        er.cd_size = cd_size;
                        er.cd_offset = cd_offset;
                        er.cd_end_expected = (size_t) z64_offset;
                }
        }

        *ret = er;
        return 0;
}

/* Parses one central directory entry at the cursor. Returns 0, -ENODATA when the
 * bytes are not an entry (wrong signature or cut short), -EBADMSG when the entry
 * is an entry but its zip64 fields are missing (finding made). */
static int central_entry_read(struct scan_ctx *ctx, struct cursor *cd, struct zip_entry *ret) {
        struct cursor c = *cd;
        struct zip_entry e = { 0 };
        uint32_t sig, crc, csize32, usize32, loff32, ext_attr;
        uint16_t made, needed, flags, method, mtime, mdate, name_len, extra_len, comment_len, disk, int_attr;
        const uint8_t *name, *extra, *comment;

        if (cursor_le32(&c, &sig) < 0 || sig != ZIP_CDH_SIG ||
            cursor_le16(&c, &made) < 0 || cursor_le16(&c, &needed) < 0 ||
            cursor_le16(&c, &flags) < 0 || cursor_le16(&c, &method) < 0 ||
            cursor_le16(&c, &mtime) < 0 || cursor_le16(&c, &mdate) < 0 ||
            cursor_le32(&c, &crc) < 0 || cursor_le32(&c, &csize32) < 0 ||
            cursor_le32(&c, &usize32) < 0 || cursor_le16(&c, &name_len) < 0 ||
            cursor_le16(&c, &extra_len) < 0 || cursor_le16(&c, &comment_len) < 0 ||
            cursor_le16(&c, &disk) < 0 || cursor_le16(&c, &int_attr) < 0 ||
            cursor_le32(&c, &ext_attr) < 0 || cursor_le32(&c, &loff32) < 0 ||
            cursor_take(&c, name_len, &name) < 0 || cursor_take(&c, extra_len, &extra) < 0 ||
            cursor_take(&c, comment_len, &comment) < 0)
                return -ENODATA;
        *cd = c;

        e.name = name;
        e.name_len = name_len;
        e.flags = flags;
        e.method = method;
        e.crc32 = crc;
        e.comp_size = csize32;
        e.size = usize32;
        e.local_offset = loff32;

        if (csize32 == ZIP_U32_MAX || usize32 == ZIP_U32_MAX || loff32 == ZIP_U32_MAX) {
                struct cursor f;
                /* miniz's order: uncompressed, compressed, local offset, each only
                 * when its 32-bit field is saturated. */
                if (extra_find(extra, extra_len, ZIP_EXTRA_ZIP64, &f) < 0 ||
                    (usize32 == ZIP_U32_MAX && cursor_le64(&f, &e.size) < 0) ||
                    (csize32 == ZIP_U32_MAX && cursor_le64(&f, &e.comp_size) < 0) ||
                    (loff32 == ZIP_U32_MAX && cursor_le64(&f, &e.local_offset) < 0)) {
                        entry_finding(ctx, &e, RULE_MALFORMED, SEV_HIGH,
                                      "zip: central directory sizes are 0xffffffff without a usable zip64 extra field");
                        *ret = e;
                        return -EBADMSG;
                }
        }
        if (disk != 0)
                entry_finding(ctx, &e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                              "zip: member claims to start on disk %u", disk);
        check_unicode_path(ctx, &e, extra, extra_len, "central directory");

        *ret = e;
        return 0;
}

static int cmp_by_name(const void *a, const void *b, void *userdata) {
        const struct zip_reader *z = userdata;
        const struct zip_entry *x = &z->entries[*(const size_t *) a];
        const struct zip_entry *y = &z->entries[*(const size_t *) b];
        int d = name_casecmp(x->name, x->name_len, y->name, y->name_len);
        if (d)
                return d;
        return (*(const size_t *) a > *(const size_t *) b) - (*(const size_t *) a < *(const size_t *) b);
}

static int cmp_by_offset(const void *a, const void *b, void *userdata) {
        const struct zip_reader *z = userdata;
        const struct zip_entry *x = &z->entries[*(const size_t *) a];
        const struct zip_entry *y = &z->entries[*(const size_t *) b];
        if (x->local_offset != y->local_offset)
                return x->local_offset < y->local_offset ? -1 : 1;
        return (*(const size_t *) a > *(const size_t *) b) - (*(const size_t *) a < *(const size_t *) b);
}

/* Duplicate names: PyTorch's reader finds records by a case-insensitive binary
 * search, Python's zipfile keeps the last of exact duplicates; either way a second
 * member of the same name is one a scanner may not see. */
static void check_duplicates(struct scan_ctx *ctx, const struct zip_reader *z, size_t *idx) {
        for (size_t i = 0; i < z->n_entries; i++)
                idx[i] = i;
        qsort_r(idx, z->n_entries, sizeof(*idx), cmp_by_name, (void *) z);
        for (size_t i = 1; i < z->n_entries; i++) {
                const struct zip_entry *a = &z->entries[idx[i - 1]], *b = &z->entries[idx[i]];
                if (name_casecmp(a->name, a->name_len, b->name, b->name_len) != 0)
                        continue;
                if (a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0)
                        entry_finding(ctx, b, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: duplicate member name");
                else
                        entry_finding(ctx, b, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: member names differ only in case (PyTorch's reader ignores case)");
        }
}

/* Every byte of a well-formed archive belongs to exactly one member, the central
 * directory or the end records. Overlaps, gaps and prepended data are bytes that
 * one reader sees and another does not. */
static bool all_zero(const struct zip_reader *z, uint64_t from, uint64_t to) {
        struct cursor all = cursor_make(z->buf, z->len), c;
        uint8_t b;

        if (from > to || to > z->len || cursor_slice(&all, (size_t) from, (size_t) (to - from), &c) < 0)
                return false;
        while (cursor_u8(&c, &b) == 0)
                if (b)
                        return false;
        return true;
}

static void check_layout(struct scan_ctx *ctx, struct zip_reader *z, const struct end_record *er,
                         size_t *idx) {
        size_t n = 0;
        uint64_t end = 0;
        const struct zip_entry *prev = NULL;

        for (size_t i = 0; i < z->n_entries; i++)
                if (z->entries[i].readable)
                        idx[n++] = i;
        if (n > 1)
                qsort_r(idx, n, sizeof(*idx), cmp_by_offset, z);

        z->first_local_offset = n > 0 ? z->entries[idx[0]].local_offset : er->cd_offset;
        if (z->first_local_offset > 0)
                archive_finding(ctx, RULE_ARCHIVE_TAMPERED,
                                "zip: %llu bytes of other data before the first member",
                                (unsigned long long) z->first_local_offset);
        for (size_t i = 0; i < n; i++) {
                const struct zip_entry *e = &z->entries[idx[i]];
                if (prev && e->local_offset < end) {
                        char other[REPORT_MEMBER_MAX];
                        zip_entry_name(prev, other);
                        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: member data overlaps member \"%s\"", other);
                } else if (prev && e->local_offset > end && !all_zero(z, end, e->local_offset))
                        /* Zero padding (an aligning writer) hides nothing. */
                        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: %llu bytes before this member belong to no member",
                                      (unsigned long long) (e->local_offset - end));
                if (!prev || e->extent_end > end) {
                        end = e->extent_end;
                        prev = e;
                }
        }
        if (n > 0 && end > er->cd_offset)
                archive_finding(ctx, RULE_ARCHIVE_TAMPERED, "zip: member data overlaps the central directory");
        else if (n > 0 && end < er->cd_offset && !all_zero(z, end, er->cd_offset))
                archive_finding(ctx, RULE_ARCHIVE_TAMPERED,
                                "zip: %llu bytes before the central directory belong to no member",
                                (unsigned long long) (er->cd_offset - end));
}

int zip_open(struct scan_ctx *ctx, const uint8_t *buf, size_t len, struct zip_reader *ret) {
        struct zip_reader z = { .buf = buf, .len = len };
        struct end_record er;
        struct cursor c = cursor_make(buf, len), cd;
        size_t cap, *idx = NULL;
        int r;

        r = end_record_read(ctx, buf, len, &er);
        if (r < 0)
                return r;
        z.zip64 = er.zip64;

        if (er.disk != 0 || er.cd_disk != 0 || er.n_disk != er.n_total)
                archive_finding(ctx, RULE_ARCHIVE_TAMPERED,
                                "zip: end record describes a multi-disk archive (disk %u, directory on disk %u, %llu of %llu entries)",
                                er.disk, er.cd_disk, (unsigned long long) er.n_disk,
                                (unsigned long long) er.n_total);
        if (er.n_total > ZIP_ENTRIES_MAX) {
                archive_finding(ctx, RULE_MALFORMED, "zip: end record claims %llu entries, more than the %u this scanner reads",
                                (unsigned long long) er.n_total, ZIP_ENTRIES_MAX);
                return -E2BIG;
        }
        if (er.cd_offset > len || er.cd_size > len - er.cd_offset ||
            cursor_slice(&c, (size_t) er.cd_offset, (size_t) er.cd_size, &cd) < 0) {
                archive_finding(ctx, RULE_MALFORMED,
                                "zip: central directory (%llu bytes at offset %llu) lies outside the file",
                                (unsigned long long) er.cd_size, (unsigned long long) er.cd_offset);
                return -EBADMSG;
        }
        if (er.cd_offset + er.cd_size != er.cd_end_expected)
                /* Python's zipfile shifts every offset by this difference; miniz
                 * does not. The two then read different bytes. */
                archive_finding(ctx, RULE_ARCHIVE_TAMPERED,
                                "zip: central directory ends at %llu but the end record is at %zu",
                                (unsigned long long) (er.cd_offset + er.cd_size), er.cd_end_expected);
        if ((uint64_t) er.pos + ZIP_EOCD_SIZE + er.comment_len != len) {
                if ((uint64_t) er.pos + ZIP_EOCD_SIZE + er.comment_len < len)
                        archive_finding(ctx, RULE_ARCHIVE_TAMPERED, "zip: %llu bytes of data after the end of the archive",
                                        (unsigned long long) (len - er.pos - ZIP_EOCD_SIZE - er.comment_len));
                else
                        archive_finding(ctx, RULE_ARCHIVE_TAMPERED, "zip: archive comment runs past the end of the file");
        }

        /* Each entry takes at least ZIP_CDH_SIZE bytes: the directory's own size
         * bounds the allocation, not the count it claims. */
        cap = (size_t) (er.cd_size / ZIP_CDH_SIZE);
        if (cap > ZIP_ENTRIES_MAX)
                cap = ZIP_ENTRIES_MAX;
        if (cap > 0) {
                z.entries = calloc(cap, sizeof(*z.entries));
                if (!z.entries)
                        return -ENOMEM;
        }
        while (cursor_left(&cd) > 0) {
                struct zip_entry e;
                size_t at = cd.pos;

                if (z.n_entries >= cap) {
                        /* Only reachable at ZIP_ENTRIES_MAX. */
                        archive_finding(ctx, RULE_MALFORMED, "zip: central directory holds more than %u entries",
                                        ZIP_ENTRIES_MAX);
                        free(z.entries);
                        return -E2BIG;
                }
                r = central_entry_read(ctx, &cd, &e);
                if (r == -ENODATA) {
                        if (z.n_entries >= er.n_total)
                                archive_finding(ctx, RULE_ARCHIVE_TAMPERED,
                                                "zip: %zu bytes at the end of the central directory are not an entry",
                                                cursor_left(&cd));
                        else
                                archive_finding(ctx, RULE_MALFORMED,
                                                "zip: central directory entry %zu at offset %llu is invalid",
                                                z.n_entries, (unsigned long long) (er.cd_offset + at));
                        break;
                }
                /* An entry whose zip64 fields are missing (-EBADMSG, reported)
                 * still counts, but has no known data to read. */
                check_name(ctx, &e);
                if (r == 0)
                        check_local_header(ctx, &z, &e);
                z.entries[z.n_entries++] = e;
        }
        if (z.n_entries != er.n_total)
                archive_finding(ctx, RULE_ARCHIVE_TAMPERED,
                                "zip: end record says %llu entries, the central directory holds %zu",
                                (unsigned long long) er.n_total, z.n_entries);

        for (size_t i = 0; i < z.n_entries; i++) {
                const struct zip_entry *e = &z.entries[i];

                if (e->method != ZIP_METHOD_STORED && e->method != ZIP_METHOD_DEFLATED)
                        entry_finding(ctx, e, RULE_UNSUPPORTED_CONTAINER, SEV_HIGH,
                                      "zip: member compressed with method %u (%s), which modelgate cannot read",
                                      e->method, method_name(e->method));
                else if (e->method == ZIP_METHOD_STORED && e->comp_size != e->size)
                        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: stored member with compressed size %llu but size %llu",
                                      (unsigned long long) e->comp_size, (unsigned long long) e->size);
                else if (e->size > 0 && e->comp_size == 0)
                        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: member of %llu bytes with no compressed data",
                                      (unsigned long long) e->size);
        }

        if (z.n_entries > 0) {
                idx = malloc(z.n_entries * sizeof(*idx));
                if (!idx) {
                        free(z.entries);
                        return -ENOMEM;
                }
                check_duplicates(ctx, &z, idx);
        }
        check_layout(ctx, &z, &er, idx);
        free(idx);

        *ret = z;
        return 0;
}

void zip_close(struct zip_reader *z) {
        free(z->entries);
        z->entries = NULL;
        z->n_entries = 0;
}

static void check_crc(struct scan_ctx *ctx, const struct zip_entry *e, const uint8_t *data, size_t len) {
        uint32_t crc = (uint32_t) crc32_z(0, data, len);

        if (crc != e->crc32)
                entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                              "zip: CRC-32 mismatch (directory %08x, data %08x)", e->crc32, crc);
}

static int inflate_member(struct scan_ctx *ctx, const struct zip_reader *z, const struct zip_entry *e,
                          size_t limit, const uint8_t **ret_data, size_t *ret_len, uint8_t **ret_owned) {
        const uint8_t *in = z->buf + e->data_offset;
        size_t in_left = (size_t) e->comp_size, cap, out_len = 0;
        uint8_t *out, scratch;
        bool more = false;
        z_stream s;
        int zr = Z_OK;

        cap = limit < ZIP_INFLATE_FIRST_ALLOC ? limit : ZIP_INFLATE_FIRST_ALLOC;
        if (e->size < cap)
                cap = (size_t) e->size + 1;   /* one more byte shows a lying size */
        out = malloc(cap);
        if (!out)
                return -ENOMEM;
        memset(&s, 0, sizeof(s));
        if (inflateInit2(&s, -MAX_WBITS) != Z_OK) {
                free(out);
                return -ENOMEM;
        }

        for (;;) {
                bool probe = false;
                uInt before;

                if (s.avail_in == 0 && in_left > 0) {
                        size_t n = in_left < ZIP_INFLATE_IN_CHUNK ? in_left : ZIP_INFLATE_IN_CHUNK;
                        s.next_in = (Bytef *) in;
                        s.avail_in = (uInt) n;
                        in += n;
                        in_left -= n;
                }
                if (out_len == cap) {
                        if (cap < limit) {
                                size_t ncap = cap > limit / 2 ? limit : cap * 2;
                                uint8_t *p = realloc(out, ncap);
                                if (!p) {
                                        zr = Z_MEM_ERROR;
                                        break;
                                }
                                out = p;
                                cap = ncap;
                        } else
                                probe = true;   /* at the limit: is there more? */
                }
                if (probe) {
                        s.next_out = &scratch;
                        s.avail_out = 1;
                } else {
                        size_t room = cap - out_len;
                        s.next_out = out + out_len;
                        s.avail_out = (uInt) (room < UINT32_MAX ? room : UINT32_MAX);
                }
                before = s.avail_out;
                zr = inflate(&s, Z_NO_FLUSH);
                if (probe && s.avail_out != before) {
                        more = true;
                        break;
                }
                if (!probe)
                        out_len += before - s.avail_out;
                if (zr == Z_STREAM_END)
                        break;
                if (zr == Z_OK)
                        continue;
                if (zr == Z_BUF_ERROR && s.avail_in == 0 && in_left > 0)
                        continue;
                break;
        }
        size_t unused_in = in_left + s.avail_in;
        inflateEnd(&s);

        if (zr == Z_MEM_ERROR) {
                free(out);
                return -ENOMEM;
        }

        int result;
        if (more) {
                result = ZIP_READ_PREFIX;
                if (out_len >= e->size)
                        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: member inflates to more than the %llu bytes the directory declares",
                                      (unsigned long long) e->size);
        } else if (zr == Z_STREAM_END) {
                result = ZIP_READ_WHOLE;
                if (out_len != e->size)
                        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: member inflates to %zu bytes, the directory declares %llu",
                                      out_len, (unsigned long long) e->size);
                if (unused_in > 0)
                        entry_finding(ctx, e, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                      "zip: %zu bytes of compressed data follow the end of the deflate stream",
                                      unused_in);
                check_crc(ctx, e, out, out_len);
        } else {
                result = ZIP_READ_BROKEN;
                entry_finding(ctx, e, RULE_MALFORMED, SEV_HIGH,
                              "zip: deflate stream is %s after %zu bytes",
                              zr == Z_DATA_ERROR || zr == Z_NEED_DICT ? "corrupt" : "cut short", out_len);
        }

        *ret_data = out;
        *ret_len = out_len;
        *ret_owned = out;
        return result;
}

int zip_read(struct scan_ctx *ctx, const struct zip_reader *z, const struct zip_entry *e,
             size_t limit, const uint8_t **ret_data, size_t *ret_len, uint8_t **ret_owned) {
        if (!e->readable)
                return -EBADMSG;

        if (limit == 0) {
                *ret_data = z->buf + e->data_offset;
                *ret_len = 0;
                *ret_owned = NULL;
                return e->size == 0 ? ZIP_READ_WHOLE : ZIP_READ_PREFIX;
        }

        if (e->method == ZIP_METHOD_STORED) {
                /* miniz copies comp_size bytes of a stored member. */
                size_t n = (size_t) e->comp_size;

                *ret_data = z->buf + e->data_offset;
                *ret_owned = NULL;
                if (n > limit) {
                        *ret_len = limit;
                        return ZIP_READ_PREFIX;
                }
                *ret_len = n;
                check_crc(ctx, e, *ret_data, n);
                return ZIP_READ_WHOLE;
        }
        if (e->method != ZIP_METHOD_DEFLATED)
                return -EOPNOTSUPP;
        return inflate_member(ctx, z, e, limit, ret_data, ret_len, ret_owned);
}
