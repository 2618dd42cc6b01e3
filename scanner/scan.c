/* scan.c — format sniffing by content and dispatch to the parsers. Never looks at
 * a file name. Owns the decision of what a byte range is; the parsers own what it
 * means. Runs inside the sandboxed worker: it only reads the mapping it is given. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>

#include "archive.h"
#include "zip.h"
#include "json.h"
#include "keras.h"
#include "template.h"
#include "gguf.h"
#include "lfs.h"
#include "hdf5.h"
#include "npy.h"
#include "onnx.h"
#include "pickle.h"
#include "safetensors.h"
#include "scan.h"
#include "tar.h"
#include "torch-tar.h"

/* Files larger than this have their HDF5 user-block offsets probed without
 * readahead (below it, the probes fall inside what any parse reads anyway). */
#define SCAN_PROBE_RANDOM_MIN ((uint64_t) 8 << 20)

/* Text with NUL bytes is checked as a template up to this size (chat templates are
 * kilobytes); past it, Jinja2 syntax in it is a finding rather than read. */
#define SCAN_NUL_TEXT_MAX ((size_t) 64 << 20)

/* How much of a file is looked at to decide whether it is text. */
#define SNIFF_TEXT_BYTES 65536

static bool starts_with(const uint8_t *buf, size_t len, const void *magic, size_t n) {
        return len >= n && memcmp(buf, magic, n) == 0;
}

static bool is_zlib_header(const uint8_t *buf, size_t len) {
        return len >= 2 && (buf[0] & 0x0f) == 8 && (buf[0] >> 4) <= 7 && ((buf[0] << 8) | buf[1]) % 31 == 0;
}

static bool looks_like_text(const uint8_t *buf, size_t len) {
        size_t n = len < SNIFF_TEXT_BYTES ? len : SNIFF_TEXT_BYTES;
        for (size_t i = 0; i < n;) {
                uint8_t c = buf[i];
                if (c == 0)
                        return false;
                if (c < 0x80) {
                        /* Other control characters are still text to Python's
                         * open(encoding='utf-8') and to Jinja2, which renders a
                         * template around them. */
                        i++;
                        continue;
                }
                size_t k = c >= 0xf0 && c <= 0xf4 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c <= 0xdf ? 1 : 0;
                if (k == 0 || c > 0xf4)
                        return false;
                if (i + k >= n)
                        return n < len;   /* a character cut by the sniff window */
                for (size_t j = 1; j <= k; j++)
                        if ((buf[i + j] & 0xc0) != 0x80)
                                return false;
                i += k + 1;
        }
        return true;
}

/* Valid UTF-8 over all of [buf, buf+n), NUL allowed (Python decodes it; Jinja2
 * renders around it). A character cut at n counts as valid when more follows. */
static bool utf8_with_nul(const uint8_t *buf, size_t n, size_t len) {
        for (size_t i = 0; i < n;) {
                uint8_t c = buf[i];
                if (c < 0x80) {
                        i++;
                        continue;
                }
                size_t k = c >= 0xf0 && c <= 0xf4 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c <= 0xdf ? 1 : 0;
                if (k == 0 || c > 0xf4)
                        return false;
                if (i + k >= n)
                        return n < len;
                for (size_t j = 1; j <= k; j++)
                        if ((buf[i + j] & 0xc0) != 0x80)
                                return false;
                i += k + 1;
        }
        return true;
}

enum mg_format scan_sniff(const uint8_t *buf, size_t len) {
        if (len == 0)
                return FMT_EMPTY;
        if (lfs_sniff(buf, len))
                return FMT_LFS_POINTER;
        if (gguf_sniff(buf, len))
                return FMT_GGUF;
        if (starts_with(buf, len, "PK\x03\x04", 4) || starts_with(buf, len, "PK\x05\x06", 4))
                return FMT_ZIP;
        if (starts_with(buf, len, "7z\xbc\xaf\x27\x1c", 6))
                return FMT_7Z;
        if (starts_with(buf, len, "Rar!\x1a\x07", 6))
                return FMT_RAR;
        if (starts_with(buf, len, "\x1f\x8b", 2))
                return FMT_GZIP;
        if (starts_with(buf, len, "BZh", 3) && len > 3 && buf[3] >= '1' && buf[3] <= '9')
                return FMT_BZIP2;
        if (starts_with(buf, len, "\xfd" "7zXZ\x00", 6))
                return FMT_XZ;
        if (starts_with(buf, len, "\x28\xb5\x2f\xfd", 4) || starts_with(buf, len, "\x04\x22\x4d\x18", 4))
                return FMT_ZSTD;
        if (hdf5_sniff(buf, len))
                return FMT_HDF5;
        if (safetensors_sniff(buf, len))
                return FMT_SAFETENSORS;
        if (npy_sniff(buf, len))
                return FMT_NPY;
        /* Before tar, pickle and zlib: field order is free in protobuf, so a model
         * can start like any of them; onnx_scan() checks for such polyglots. */
        if (onnx_sniff(buf, len))
                return FMT_ONNX;
        if (tar_sniff(buf, len))
                return FMT_TAR;
        if (pickle_sniff(buf, len))
                return FMT_PICKLE;
        if (is_zlib_header(buf, len))
                return FMT_GZIP;   /* joblib's zlib compression: decided by inflating */
        if (hdf5_sniff_userblock(buf, len))
                return FMT_HDF5;   /* after a user block */
        if (looks_like_text(buf, len))
                return FMT_TEXT;
        return FMT_UNKNOWN;
}

int scan_inflate(const uint8_t *buf, size_t len, size_t limit, uint8_t **ret, size_t *ret_len, bool *ret_truncated) {
        z_stream z;
        size_t cap = len < 65536 ? 65536 : len * 2;
        uint8_t *out = NULL;
        int r;

        memset(&z, 0, sizeof(z));
        if (inflateInit2(&z, 15 + 32) != Z_OK)
                return -ENOMEM;
        z.next_in = (uint8_t *) buf;
        *ret_truncated = false;
        for (;;) {
                if (cap > limit)
                        cap = limit;
                uint8_t *n = realloc(out, cap ? cap : 1);
                if (!n) {
                        r = Z_MEM_ERROR;
                        break;
                }
                out = n;
                size_t in_left = len - (size_t) (z.next_in - buf);
                z.avail_in = (uInt) (in_left > UINT32_MAX ? UINT32_MAX : in_left);
                z.next_out = out + z.total_out;
                z.avail_out = (uInt) (cap - z.total_out > UINT32_MAX ? UINT32_MAX : cap - z.total_out);
                r = inflate(&z, Z_NO_FLUSH);
                if (r == Z_STREAM_END)
                        break;
                if (r != Z_OK && r != Z_BUF_ERROR)
                        break;
                if (z.avail_out == 0) {
                        if (cap >= limit) {
                                *ret_truncated = true;
                                r = Z_STREAM_END;
                                break;
                        }
                        cap *= 2;
                } else if (z.avail_in == 0 && (size_t) (z.next_in - buf) >= len)
                        break;   /* input ended before the stream did */
        }
        size_t got = z.total_out;
        inflateEnd(&z);
        if (r != Z_STREAM_END) {
                free(out);
                return r == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
        }
        *ret = out;
        *ret_len = got;
        return 0;
}

static enum mg_format scan_compressed(struct scan_ctx *ctx, const uint8_t *buf, size_t len, enum mg_format fmt) {
        uint8_t *data = NULL;
        size_t n = 0;
        bool truncated;
        int r = scan_inflate(buf, len, SCAN_INFLATE_MAX, &data, &n, &truncated);

        if (r < 0) {
                if (fmt == FMT_GZIP && buf[0] != 0x1f)
                        return looks_like_text(buf, len) ? FMT_TEXT : FMT_UNKNOWN;   /* not zlib after all */
                scan_finding(ctx, r == -ENOMEM ? RULE_SCAN_ERROR : RULE_MALFORMED, SEV_HIGH,
                             "compressed data cannot be decompressed (%s)", r == -ENOMEM ? "out of memory" : "corrupt stream");
                return fmt;
        }
        if (truncated)
                scan_finding(ctx, RULE_SCAN_ERROR, SEV_HIGH,
                             "decompressed data exceeds the scanner's limit of %zu MiB; the rest was not scanned",
                             SCAN_INFLATE_MAX >> 20);
        scan_nested(ctx, fmt == FMT_GZIP && buf[0] == 0x1f ? "(gunzip)" : "(zlib)", data, n);
        free(data);
        return FMT_GZIP;
}

/* Text in a model repository that a loader interprets: JSON (a tokenizer config's
 * chat templates, a Keras model config) and Jinja2 templates. Parsed with Python's
 * rules, since Python code reads them. */
static enum mg_format scan_text(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        size_t i = len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;   /* json.loads(bytes) skips a BOM */

        while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
                i++;
        if (i < len && (buf[i] == '{' || buf[i] == '[')) {
                struct json_doc *doc = NULL;
                char err[160];
                int r = keras_json_parse(buf, len, &doc, err, sizeof(err));
                if (r == 0) {
                        const struct json_value *root = json_root(doc);
                        uint32_t before = ctx->report->n_findings;
                        template_check_tokenizer_config(ctx, root);
                        bool config_template_found = ctx->report->n_findings != before;
                        if (keras_config_sniff(root))
                                keras_config_scan(ctx, root);
                        json_free(doc);
                        /* Valid JSON can be a Jinja2 template too (a .jinja file
                         * holding ["{{ ... }}"]): what renders it sees no JSON. */
                        if (!config_template_found && template_sniff(buf, len) && template_compiles(buf, len))
                                template_check(ctx, "template", buf, len);
                        return FMT_JSON;
                }
                if (r == -E2BIG || r == -ENOMEM) {
                        /* Python would read it: what it holds cannot be vouched for. */
                        scan_finding(ctx, RULE_SCAN_ERROR, SEV_HIGH, "JSON too large to check (%s)",
                                     r == -ENOMEM ? "out of memory" : err);
                        return FMT_JSON;
                }
                /* Not JSON after all (json.load would refuse it too): plain text. */
        }
        /* A text file is a template only if Jinja2 would compile it: source code
         * with "{{" in its strings would not, and so never renders. */
        if (template_sniff(buf, len) && template_compiles(buf, len)) {
                template_check(ctx, "template", buf, len);
                return FMT_TEMPLATE;
        }
        return FMT_TEXT;
}

/* Data that is not text only because it holds NUL bytes is still a template to
 * Python and Jinja2 (a chat_template.jinja with a NUL hides nothing from them). */
static enum mg_format scan_unknown(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        size_t n = len < SCAN_NUL_TEXT_MAX ? len : SCAN_NUL_TEXT_MAX;

        if (!memchr(buf, 0, len < SNIFF_TEXT_BYTES ? len : SNIFF_TEXT_BYTES) || !utf8_with_nul(buf, n, len) ||
            !template_sniff(buf, n))
                return FMT_UNKNOWN;
        if (n < len) {
                scan_finding(ctx, RULE_SCAN_ERROR, SEV_HIGH,
                             "text with NUL bytes and Jinja2 syntax, larger than %zu MiB: not checked as a template",
                             SCAN_NUL_TEXT_MAX >> 20);
                return FMT_UNKNOWN;
        }
        if (!template_compiles(buf, len))
                return FMT_UNKNOWN;
        template_check(ctx, "template", buf, len);
        return FMT_TEMPLATE;
}

static enum mg_format scan_dispatch(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        enum mg_format fmt = scan_sniff(buf, len);

        /* h5py finds a superblock after a user block whatever precedes it: a file
         * that is also something else is read as HDF5 too. */
        if (fmt != FMT_HDF5 && hdf5_sniff_userblock(buf, len))
                hdf5_scan(ctx, buf, len);
        /* Likewise Python's zipfile (Keras 3 opens .keras files with it) reads a zip
         * appended to anything: scan it, and say that the file is two things. */
        size_t zip_start;
        if (fmt != FMT_ZIP && zip_find_appended(buf, len, &zip_start)) {
                scan_finding(ctx, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                             "a zip archive is appended at offset %zu to %s data: readers that find a zip from its end "
                             "(Python's zipfile, Keras) read it", zip_start, format_name(fmt));
                scan_nested(ctx, "(appended zip)", buf + zip_start, len - zip_start);
        }
        switch (fmt) {
        case FMT_TEXT:
                return scan_text(ctx, buf, len);
        case FMT_UNKNOWN:
                return scan_unknown(ctx, buf, len);
        case FMT_EMPTY:
                return fmt;
        case FMT_ZIP:
                return zip_scan(ctx, buf, len);
        case FMT_NPY:
                npy_scan(ctx, buf, len);
                return FMT_NPY;
        case FMT_LFS_POINTER:
                lfs_scan(ctx, buf, len);
                return FMT_LFS_POINTER;
        case FMT_SAFETENSORS:
                return safetensors_scan(ctx, buf, len);
        case FMT_GGUF:
                return gguf_scan(ctx, buf, len);
        case FMT_HDF5:
                return hdf5_scan(ctx, buf, len);
        case FMT_TAR:
                return torch_tar_scan(ctx, buf, len);
        case FMT_PICKLE:
                return pickle_scan_all(ctx, buf, len);
        case FMT_ONNX:
                return onnx_scan(ctx, buf, len);
        case FMT_GZIP:
                return scan_compressed(ctx, buf, len, fmt);
        case FMT_7Z:
        case FMT_RAR:
        case FMT_BZIP2:
        case FMT_XZ:
        case FMT_ZSTD:
                scan_finding(ctx, RULE_UNSUPPORTED_CONTAINER, SEV_HIGH,
                             "%s container: its content cannot be inspected, and a loader or a helper script may unpack it",
                             format_name(fmt));
                return fmt;
        default:
                return fmt;
        }
}

bool scan_member_enter(struct scan_ctx *ctx, const char *name, char saved[REPORT_MEMBER_MAX]) {
        if (ctx->depth + 1 >= SCAN_DEPTH_MAX) {
                scan_finding(ctx, RULE_UNSUPPORTED_CONTAINER, SEV_HIGH,
                             "containers nested more than %d levels deep; %s was not scanned", SCAN_DEPTH_MAX, name);
                return false;
        }
        memcpy(saved, ctx->member, REPORT_MEMBER_MAX);
        if (saved[0])
                snprintf(ctx->member, sizeof(ctx->member), "%.*s/%s", REPORT_MEMBER_MAX / 2, saved, name);
        else
                snprintf(ctx->member, sizeof(ctx->member), "%s", name);
        ctx->depth++;
        return true;
}

void scan_member_leave(struct scan_ctx *ctx, const char saved[REPORT_MEMBER_MAX]) {
        ctx->depth--;
        memcpy(ctx->member, saved, REPORT_MEMBER_MAX);
}

enum mg_format scan_nested(struct scan_ctx *ctx, const char *name, const uint8_t *buf, size_t len) {
        char saved[REPORT_MEMBER_MAX];
        enum mg_format fmt;

        if (!scan_member_enter(ctx, name, saved))
                return FMT_UNKNOWN;
        fmt = scan_dispatch(ctx, buf, len);
        scan_member_leave(ctx, saved);
        return fmt;
}

void scan_buffer(struct scan_report *r, const uint8_t *buf, size_t len) {
        struct scan_ctx ctx = { .report = r };

        r->size = len;
        r->format = (uint8_t) scan_dispatch(&ctx, buf, len);
}

int scan_fd(int fd, struct scan_report *r) {
        struct stat st;
        void *map;

        /* The fd-only fstat system call: glibc's fstat() uses newfstatat, which the
         * worker's filter does not allow because it takes a path. */
        if (syscall(SYS_fstat, fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_size == 0) {
                scan_buffer(r, (const uint8_t *) "", 0);
                return 0;
        }
        if ((uint64_t) st.st_size > SIZE_MAX)
                return -EFBIG;
        /* A shared read-only mapping: no copy, and it does not count against the
         * worker's RLIMIT_DATA. A file truncated under us raises SIGBUS, which kills
         * the worker and becomes SCAN_ERROR (fail closed). */
        map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        /* h5py looks for an HDF5 superblock at every power of two from 512 up to
         * the end of the file, and so does scan_dispatch(): ~25 single bytes spread
         * over a 20 GB file. Touch them with readahead off, so that each costs one
         * page and not a readahead window (100 MB in all, measured); sequential
         * readers get readahead back for the real parse. */
        if ((uint64_t) st.st_size > SCAN_PROBE_RANDOM_MIN) {
                size_t ignored;
                (void) madvise(map, (size_t) st.st_size, MADV_RANDOM);
                (void) hdf5_sniff_userblock(map, (size_t) st.st_size);
                (void) zip_find_appended(map, (size_t) st.st_size, &ignored);
                (void) madvise(map, (size_t) st.st_size, MADV_NORMAL);
        }
        scan_buffer(r, map, (size_t) st.st_size);
        munmap(map, (size_t) st.st_size);
        return 0;
}
