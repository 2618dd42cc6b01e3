/* test-zip.c — unit tests for the zip reader, zip member dispatch, npy headers and
 * the tar reader. Every archive is built here, byte by byte (deflate via zlib), so
 * each tampering is visible in the test that checks it; no fixture files. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "archive.h"
#include "npy.h"
#include "report.h"
#include "scan.h"
#include "tap.h"
#include "tar.h"
#include "zip.h"

/* ---- byte buffers ---- */

struct buf {
        uint8_t *p;
        size_t len, cap;
};

static void b_put(struct buf *b, const void *d, size_t n) {
        if (b->len + n > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->len + n)
                        cap *= 2;
                b->p = realloc(b->p, cap);
                TAP_CHECK(b->p);
                b->cap = cap;
        }
        if (n)
                memcpy(b->p + b->len, d, n);
        b->len += n;
}

static void b_u8(struct buf *b, uint8_t v) {
        b_put(b, &v, 1);
}

static void b_le16(struct buf *b, uint16_t v) {
        uint8_t x[2] = { (uint8_t) v, (uint8_t) (v >> 8) };
        b_put(b, x, 2);
}

static void b_le32(struct buf *b, uint32_t v) {
        uint8_t x[4] = { (uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16), (uint8_t) (v >> 24) };
        b_put(b, x, 4);
}

static void b_le64(struct buf *b, uint64_t v) {
        b_le32(b, (uint32_t) v);
        b_le32(b, (uint32_t) (v >> 32));
}

static void b_str(struct buf *b, const char *s) {
        b_put(b, s, strlen(s));
}

static uint8_t *deflate_raw(const void *d, size_t n, size_t *ret_len) {
        z_stream s;
        uint8_t *out;

        memset(&s, 0, sizeof(s));
        TAP_CHECK(deflateInit2(&s, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
        size_t cap = deflateBound(&s, (uLong) n) + 16;
        out = malloc(cap);
        TAP_CHECK(out);
        s.next_in = (Bytef *) d;
        s.avail_in = (uInt) n;
        s.next_out = out;
        s.avail_out = (uInt) cap;
        TAP_CHECK(deflate(&s, Z_FINISH) == Z_STREAM_END);
        *ret_len = cap - s.avail_out;
        deflateEnd(&s);
        return out;
}

/* ---- a zip writer that can lie ---- */

struct zmember {
        const char *name;
        size_t name_len;            /* 0: strlen(name) */
        const char *local_name;     /* NULL: same as name */
        const void *data;
        size_t len;
        bool deflate;
        uint16_t flags;             /* both headers */
        bool bad_crc;               /* both headers carry a wrong CRC-32 */
        bool zip64;                 /* 0xffffffff fields plus zip64 extras */
        bool torch_style;           /* as miniz writes for torch.save(): flags 0x0808,
                                     * zero local CRC/sizes, "FB" padding to align the
                                     * data at 64 bytes, data descriptor after it */
        bool bad_descriptor;        /* torch_style with a wrong CRC in the descriptor */
        /* Lies, each applied when its has_ flag is set. */
        bool has_local_flags, has_method, has_local_method, has_alias;
        bool has_size, has_central_comp_size, has_local_usize;
        uint16_t local_flags;       /* local header only */
        uint16_t method;            /* both headers (default: 0 or 8 by `deflate`) */
        uint16_t local_method;      /* local header only */
        size_t alias_of;            /* central entry reuses that member's local header */
        uint64_t size;              /* central and local uncompressed size */
        uint64_t central_comp_size; /* central compressed size only */
        uint64_t local_usize;       /* local uncompressed size only */
        /* filled in by zip_build */
        uint64_t off;
        uint32_t crc;
        size_t clen;
};

#define ZM(...) ((struct zmember) { __VA_ARGS__ })

struct zopts {
        const char *prepend;
        const char *trailing;
        int count_delta;
        bool zip64_eocd;
};

static size_t zm_name_len(const struct zmember *m) {
        return m->name_len ? m->name_len : strlen(m->name);
}

static void zip_build(struct buf *out, struct zmember *m, size_t n, const struct zopts *o) {
        static const struct zopts none;
        uint64_t cd_off, cd_size;

        if (!o)
                o = &none;
        if (o->prepend)
                b_str(out, o->prepend);
        for (size_t i = 0; i < n; i++) {
                struct zmember *z = &m[i];
                const char *lname = z->local_name ? z->local_name : z->name;
                size_t lname_len = z->local_name ? strlen(z->local_name) : zm_name_len(z);
                uint8_t *comp = NULL;
                const void *payload = z->data;
                uint16_t method = z->has_method ? z->method : z->deflate ? 8 : 0;
                uint16_t lmethod = z->has_local_method ? z->local_method : method;
                uint16_t lflags = z->has_local_flags ? z->local_flags : z->flags;
                uint64_t usize;
                size_t pad = 0;

                if (z->has_alias)
                        continue;
                z->crc = (uint32_t) crc32(0, z->data, (uInt) z->len) ^ (z->bad_crc ? 0x5a5a5a5au : 0);
                z->clen = z->len;
                if (z->deflate) {
                        comp = deflate_raw(z->data, z->len, &z->clen);
                        payload = comp;
                }
                usize = z->has_size ? z->size : z->len;
                if (z->has_local_usize)
                        usize = z->local_usize;
                z->off = out->len;
                if (z->torch_style) {
                        z->flags |= 0x0808;
                        lflags |= 0x0808;
                        pad = (64 - (out->len + 30 + lname_len + 4) % 64) % 64;
                }
                b_le32(out, 0x04034b50);
                b_le16(out, z->zip64 ? 45 : 20);
                b_le16(out, lflags);
                b_le16(out, lmethod);
                b_le16(out, 0);
                b_le16(out, 0);
                b_le32(out, z->torch_style ? 0 : z->crc);
                b_le32(out, z->torch_style ? 0 : z->zip64 ? 0xffffffffu : (uint32_t) z->clen);
                b_le32(out, z->torch_style ? 0 : z->zip64 ? 0xffffffffu : (uint32_t) usize);
                b_le16(out, (uint16_t) lname_len);
                b_le16(out, (uint16_t) (z->zip64 ? 20 : z->torch_style ? 4 + pad : 0));
                b_put(out, lname, lname_len);
                if (z->torch_style) {
                        b_le16(out, 0x4246);   /* "FB" */
                        b_le16(out, (uint16_t) pad);
                        for (size_t k = 0; k < pad; k++)
                                b_u8(out, 'Z');
                }
                if (z->zip64) {
                        b_le16(out, 0x0001);
                        b_le16(out, 16);
                        b_le64(out, usize);
                        b_le64(out, z->clen);
                }
                b_put(out, payload, z->clen);
                if (z->torch_style) {
                        b_le32(out, 0x08074b50);
                        b_le32(out, z->crc ^ (z->bad_descriptor ? 1u : 0u));
                        b_le32(out, (uint32_t) z->clen);
                        b_le32(out, (uint32_t) usize);
                }
                free(comp);
        }
        cd_off = out->len;
        for (size_t i = 0; i < n; i++) {
                struct zmember *z = &m[i];
                const struct zmember *src = z->has_alias ? &m[z->alias_of] : z;
                uint16_t method = src->has_method ? src->method : src->deflate ? 8 : 0;
                uint64_t usize = src->has_size ? src->size : src->len;
                uint64_t csize = src->has_central_comp_size ? src->central_comp_size : src->clen;

                b_le32(out, 0x02014b50);
                b_le16(out, 0x031e);
                b_le16(out, src->zip64 ? 45 : 20);
                b_le16(out, src->flags);
                b_le16(out, method);
                b_le16(out, 0);
                b_le16(out, 0);
                b_le32(out, src->crc);
                b_le32(out, src->zip64 ? 0xffffffffu : (uint32_t) csize);
                b_le32(out, src->zip64 ? 0xffffffffu : (uint32_t) usize);
                b_le16(out, (uint16_t) zm_name_len(z));
                b_le16(out, src->zip64 ? 28 : 0);
                b_le16(out, 0);
                b_le16(out, 0);
                b_le16(out, 0);
                b_le32(out, 0);
                b_le32(out, src->zip64 ? 0xffffffffu : (uint32_t) src->off);
                b_put(out, z->name, zm_name_len(z));
                if (src->zip64) {
                        b_le16(out, 0x0001);
                        b_le16(out, 24);
                        b_le64(out, usize);
                        b_le64(out, csize);
                        b_le64(out, src->off);
                }
        }
        cd_size = out->len - cd_off;
        uint64_t count = (uint64_t) ((int64_t) n + o->count_delta);
        if (o->zip64_eocd) {
                uint64_t z64 = out->len;
                b_le32(out, 0x06064b50);
                b_le64(out, 44);
                b_le16(out, 45);
                b_le16(out, 45);
                b_le32(out, 0);
                b_le32(out, 0);
                b_le64(out, count);
                b_le64(out, count);
                b_le64(out, cd_size);
                b_le64(out, cd_off);
                b_le32(out, 0x07064b50);
                b_le32(out, 0);
                b_le64(out, z64);
                b_le32(out, 1);
        }
        b_le32(out, 0x06054b50);
        b_le16(out, 0);
        b_le16(out, 0);
        b_le16(out, o->zip64_eocd ? 0xffff : (uint16_t) count);
        b_le16(out, o->zip64_eocd ? 0xffff : (uint16_t) count);
        b_le32(out, o->zip64_eocd ? 0xffffffffu : (uint32_t) cd_size);
        b_le32(out, o->zip64_eocd ? 0xffffffffu : (uint32_t) cd_off);
        b_le16(out, 0);
        if (o->trailing)
                b_str(out, o->trailing);
}

/* ---- payloads ---- */

/* GLOBAL os getcwd, EMPTY_TUPLE, REDUCE, STOP: harmless, and an import any
 * allowlist rejects. */
static const char PICKLE_EVIL[] = "\x80\x02" "cos\ngetcwd\n" ")R.";
/* {'a': 1} */
static const char PICKLE_CLEAN[] = "\x80\x02}q\x00X\x01\x00\x00\x00" "aq\x01K\x01s.";
#define PLEN(p) (sizeof(p) - 1)

/* ---- report helpers ---- */

static void dump(const struct scan_report *r) {
        for (size_t i = 0; i < r->n_findings; i++)
                fprintf(stderr, "#   %s %s [%s] %s\n", severity_name_upper(r->findings[i].severity),
                        rule_name(r->findings[i].rule), r->findings[i].member, r->findings[i].message);
        for (size_t i = 0; i < r->n_globals; i++)
                fprintf(stderr, "#   global %s:%s [%s]\n", r->globals[i].module, r->globals[i].qualname,
                        r->globals[i].member);
}

/* Findings of `rule` whose member equals `member` (NULL: any) and whose message
 * contains `text` (NULL: any). */
static size_t count_findings(const struct scan_report *r, enum mg_rule rule, const char *member,
                             const char *text) {
        size_t n = 0;
        for (size_t i = 0; i < r->n_findings; i++) {
                const struct finding *f = &r->findings[i];
                if (f->rule != rule)
                        continue;
                if (member && strcmp(f->member, member) != 0)
                        continue;
                if (text && !strstr(f->message, text))
                        continue;
                n++;
        }
        return n;
}

static bool has_global(const struct scan_report *r, const char *module, const char *qualname, const char *member) {
        for (size_t i = 0; i < r->n_globals; i++)
                if (strcmp(r->globals[i].module, module) == 0 && strcmp(r->globals[i].qualname, qualname) == 0 &&
                    (!member || strcmp(r->globals[i].member, member) == 0))
                        return true;
        return false;
}

#define CHECK_FINDING(r, rule, member, text) do {                                 \
        if (count_findings((r), (rule), (member), (text)) == 0) {                 \
                fprintf(stderr, "# expected %s [%s] \"%s\"; report:\n", rule_name(rule), \
                        (member) ? (member) : "*", (text) ? (text) : "*");        \
                dump(r);                                                          \
        }                                                                         \
        TAP_CHECK(count_findings((r), (rule), (member), (text)) > 0);             \
} while (0)

#define CHECK_NO_FINDINGS(r) do {                                                 \
        if ((r)->n_findings != 0)                                                 \
                dump(r);                                                          \
        TAP_CHECK((r)->n_findings == 0);                                          \
} while (0)

static struct scan_report *new_report(void) {
        struct scan_report *r = calloc(1, sizeof(*r));
        TAP_CHECK(r);
        report_init(r);
        return r;
}

static enum mg_format scan_zip_buf(struct scan_report *r, const struct buf *b) {
        struct scan_ctx ctx = { .report = r };
        return zip_scan(&ctx, b->p, b->len);
}

/* ---- zip: well-formed archives ---- */

static void test_torch_zip_clean_has_no_findings(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        /* The storage holds pickle bytes with a bad CRC: it must be neither
         * unpickled nor read. */
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN), .torch_style = true),
                ZM(.name = "archive/.format_version", .data = "1", .len = 1, .torch_style = true),
                ZM(.name = "archive/byteorder", .data = "little", .len = 6, .torch_style = true),
                ZM(.name = "archive/data/0", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL), .bad_crc = true,
                   .torch_style = true),
                ZM(.name = "archive/.data/version", .data = "3\n", .len = 2, .torch_style = true),
        };

        zip_build(&b, m, 5, NULL);
        TAP_CHECK(scan_zip_buf(r, &b) == FMT_PYTORCH_ZIP);
        CHECK_NO_FINDINGS(r);
        TAP_CHECK(!has_global(r, "os", "getcwd", NULL));
}

static void test_torch_zip_pickle_under_any_name_is_scanned(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN)),
                ZM(.name = "archive/config.json", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL), .deflate = true),
        };

        zip_build(&b, m, 2, NULL);
        TAP_CHECK(scan_zip_buf(r, &b) == FMT_PYTORCH_ZIP);
        TAP_CHECK(has_global(r, "os", "getcwd", "archive/config.json"));
}

static void test_torch_zip_data_pkl_scanned_whatever_it_looks_like(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        /* Not a pickle by any sniffing; torch unpickles data.pkl regardless, so
         * the VM must see it (and call it malformed). */
        struct zmember m[] = {
                ZM(.name = "archive/DATA.PKL", .data = "\x01\x02garbage", .len = 9),
        };

        zip_build(&b, m, 1, NULL);
        TAP_CHECK(scan_zip_buf(r, &b) == FMT_PYTORCH_ZIP);
        CHECK_FINDING(r, RULE_MALFORMED, "archive/DATA.PKL", NULL);
}

static void test_torchscript_archive_is_flagged(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        static const char code[] = "def forward(self, x):\n    return x\n";
        struct zmember m[] = {
                ZM(.name = "model/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN)),
                ZM(.name = "model/code/__torch__/m.py", .data = code, .len = sizeof(code) - 1),
                ZM(.name = "model/constants.pkl", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL)),
                ZM(.name = "model/constants/0", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL)),
        };

        zip_build(&b, m, 4, NULL);
        TAP_CHECK(scan_zip_buf(r, &b) == FMT_TORCHSCRIPT);
        CHECK_FINDING(r, RULE_TORCHSCRIPT_CODE, "", "code/");
        TAP_CHECK(has_global(r, "os", "getcwd", "model/constants.pkl"));
        TAP_CHECK(!has_global(r, "os", "getcwd", "model/constants/0"));
}

static void test_generic_zip_is_unsupported_but_scanned(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "weights/model.bin", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL), .deflate = true),
                ZM(.name = "README.md", .data = "hello\n", .len = 6),
        };

        zip_build(&b, m, 2, NULL);
        TAP_CHECK(scan_zip_buf(r, &b) == FMT_ZIP);
        CHECK_FINDING(r, RULE_UNSUPPORTED_CONTAINER, "", NULL);
        TAP_CHECK(has_global(r, "os", "getcwd", "weights/model.bin"));
}

static void test_zip_member_names_are_nested_under_ctx_member(void) {
        struct scan_report *r = new_report();
        struct scan_ctx ctx = { .report = r };
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "x.pkl", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL), .bad_crc = true),
        };

        zip_build(&b, m, 1, NULL);
        snprintf(ctx.member, sizeof(ctx.member), "outer.zip");
        TAP_CHECK(zip_scan(&ctx, b.p, b.len) == FMT_ZIP);
        TAP_CHECK(has_global(r, "os", "getcwd", "outer.zip/x.pkl"));
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "outer.zip/x.pkl", "CRC-32");
        TAP_CHECK_STR(ctx.member, "outer.zip");
}

static void test_zip_inside_zip_is_scanned(void) {
        struct scan_report *r = new_report();
        struct buf inner = { 0 }, outer = { 0 };
        struct zmember mi[] = {
                ZM(.name = "x.pkl", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL)),
        };

        zip_build(&inner, mi, 1, NULL);
        struct zmember mo[] = {
                ZM(.name = "inner.zip", .data = inner.p, .len = inner.len, .deflate = true),
        };
        zip_build(&outer, mo, 1, NULL);
        TAP_CHECK(scan_zip_buf(r, &outer) == FMT_ZIP);
        TAP_CHECK(has_global(r, "os", "getcwd", "inner.zip/x.pkl"));
}

static void test_zip64_archive_is_read(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL), .zip64 = true),
                ZM(.name = "archive/data/0", .data = "\0\0\0\0", .len = 4, .zip64 = true, .deflate = true),
        };
        struct zopts o = { .zip64_eocd = true };

        zip_build(&b, m, 2, &o);
        TAP_CHECK(scan_zip_buf(r, &b) == FMT_PYTORCH_ZIP);
        CHECK_NO_FINDINGS(r);
        TAP_CHECK(has_global(r, "os", "getcwd", "archive/data.pkl"));

        struct scan_ctx ctx = { .report = r };
        struct zip_reader z;
        TAP_CHECK(zip_open(&ctx, b.p, b.len, &z) == 0);
        TAP_CHECK(z.zip64);
        TAP_CHECK(zip_count(&z) == 2);
        TAP_CHECK(zip_get(&z, 0)->size == PLEN(PICKLE_EVIL));
        TAP_CHECK(zip_find(&z, "ARCHIVE/DATA/0") == zip_get(&z, 1));
        zip_close(&z);
}

/* ---- zip: tampering ---- */

static void test_zip_local_name_mismatch_is_tampered(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .local_name = "archive/other.pkl",
                   .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL)),
        };

        zip_build(&b, m, 1, NULL);
        scan_zip_buf(r, &b);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "archive/data.pkl", "archive/other.pkl");
        /* Read by the central directory, as PyTorch does. */
        TAP_CHECK(has_global(r, "os", "getcwd", "archive/data.pkl"));
}

static void test_zip_flag_bits_are_tampered(void) {
        static const struct {
                uint16_t flag;
                const char *word;
        } cases[] = {
                { 0x0001, "encrypted" }, { 0x0020, "patched" }, { 0x0040, "strong encryption" },
                { 0x2000, "masked" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct scan_report *r = new_report();
                struct buf b = { 0 };
                struct zmember m[] = {
                        ZM(.name = "archive/data.pkl", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL),
                           .flags = cases[i].flag),
                };

                zip_build(&b, m, 1, NULL);
                scan_zip_buf(r, &b);
                CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "archive/data.pkl", cases[i].word);
                /* The bytes are scanned anyway. */
                TAP_CHECK(has_global(r, "os", "getcwd", "archive/data.pkl"));
                free(b.p);
                free(r);
        }
}

static void test_zip_local_flags_differ_is_tampered(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN),
                   .has_local_flags = true, .local_flags = 0x0800),
        };

        zip_build(&b, m, 1, NULL);
        scan_zip_buf(r, &b);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "archive/data.pkl", "flags");
}

/* torch.save() sets bit 3 on every member; only a descriptor that is missing or
 * disagrees with the central directory is tampering. */
static void test_zip_data_descriptor_must_agree(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN),
                   .torch_style = true, .deflate = true),
                ZM(.name = "archive/lying.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN),
                   .torch_style = true, .bad_descriptor = true),
                ZM(.name = "archive/none.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN), .flags = 0x0008),
        };

        zip_build(&b, m, 3, NULL);
        TAP_CHECK(scan_zip_buf(r, &b) == FMT_PYTORCH_ZIP);
        TAP_CHECK(count_findings(r, RULE_ARCHIVE_TAMPERED, "archive/data.pkl", NULL) == 0);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "archive/lying.pkl", "data descriptor");
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "archive/none.pkl", "data descriptor");
}

static void test_zip_crc_mismatch_is_tampered(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL),
                   .deflate = true, .bad_crc = true),
        };

        zip_build(&b, m, 1, NULL);
        TAP_CHECK(scan_zip_buf(r, &b) == FMT_PYTORCH_ZIP);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "archive/data.pkl", "CRC-32 mismatch");
        TAP_CHECK(has_global(r, "os", "getcwd", "archive/data.pkl"));
}

static void test_zip_duplicate_names_are_tampered(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN)),
                ZM(.name = "archive/data.pkl", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL)),
                ZM(.name = "archive/Data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN)),
        };

        zip_build(&b, m, 3, NULL);
        scan_zip_buf(r, &b);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "archive/data.pkl", "duplicate");
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, NULL, "case");
        TAP_CHECK(has_global(r, "os", "getcwd", "archive/data.pkl"));
}

static void test_zip_bad_names_are_tampered(void) {
        static const struct {
                const char *name;
                size_t len;
                const char *word;
        } cases[] = {
                { "../evil.pkl", 0, "'..'" },
                { "a/../../evil.pkl", 0, "'..'" },
                { "/etc/evil.pkl", 0, "absolute" },
                { "a\\evil.pkl", 0, "backslash" },
                { "evil.pkl\0.txt", 13, "NUL" },
                { "C:evil.pkl", 0, "drive" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct scan_report *r = new_report();
                struct buf b = { 0 };
                struct zmember m[] = {
                        ZM(.name = cases[i].name, .name_len = cases[i].len,
                           .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN)),
                };

                zip_build(&b, m, 1, NULL);
                scan_zip_buf(r, &b);
                CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, NULL, cases[i].word);
                free(b.p);
                free(r);
        }
}

static void test_zip_method_and_size_mismatch_are_tampered(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN),
                   .deflate = true, .has_local_method = true, .local_method = 0),
                ZM(.name = "archive/x.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN),
                   .has_local_usize = true, .local_usize = 5),
        };

        zip_build(&b, m, 2, NULL);
        scan_zip_buf(r, &b);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "archive/data.pkl", "compression method");
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "archive/x.pkl", "local header sizes");
}

static void test_zip_overlapping_members_are_tampered(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN)),
                ZM(.name = "archive/copy.pkl", .has_alias = true, .alias_of = 0),
        };

        zip_build(&b, m, 2, NULL);
        scan_zip_buf(r, &b);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "archive/copy.pkl", "overlaps");
}

static void test_zip_entry_count_mismatch_is_tampered(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN)),
                ZM(.name = "archive/hidden.pkl", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL)),
        };
        struct zopts o = { .count_delta = -1 };

        zip_build(&b, m, 2, &o);
        scan_zip_buf(r, &b);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "", "entries");
        /* Python's zipfile sees the second entry: so do we. */
        TAP_CHECK(has_global(r, "os", "getcwd", "archive/hidden.pkl"));
}

static void test_zip_prepended_and_trailing_data_are_tampered(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN)),
        };
        /* A prepended pickle: torch.load sees no zip magic at offset 0 and takes
         * the legacy path, unpickling from the first byte. */
        struct zopts o = { .prepend = PICKLE_EVIL, .trailing = "junk" };

        zip_build(&b, m, 1, &o);
        TAP_CHECK(scan_zip_buf(r, &b) == FMT_PYTORCH_ZIP);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "", "before the first member");
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "", "after the end");
        TAP_CHECK(has_global(r, "os", "getcwd", ""));
}

static void test_zip_unknown_method_is_unsupported(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_EVIL, .len = PLEN(PICKLE_EVIL), .has_method = true, .method = 12),
        };

        zip_build(&b, m, 1, NULL);
        scan_zip_buf(r, &b);
        CHECK_FINDING(r, RULE_UNSUPPORTED_CONTAINER, "archive/data.pkl", "bzip2");
}

/* ---- zip: broken archives ---- */

static void test_zip_truncated_is_malformed(void) {
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN)),
        };

        zip_build(&b, m, 1, NULL);

        /* End record cut off. */
        struct scan_report *r = new_report();
        struct buf cut = { .p = b.p, .len = b.len - 10 };
        TAP_CHECK(scan_zip_buf(r, &cut) == FMT_ZIP);
        CHECK_FINDING(r, RULE_MALFORMED, "", "end of central directory");

        /* Only the end record: the directory it points at is gone. */
        r = new_report();
        struct buf tail = { .p = b.p + b.len - 22, .len = 22 };
        TAP_CHECK(scan_zip_buf(r, &tail) == FMT_ZIP);
        CHECK_FINDING(r, RULE_MALFORMED, "", "outside the file");

        /* Shorter than any zip. */
        r = new_report();
        struct buf tiny = { .p = (uint8_t *) "PK\5\6", .len = 4 };
        TAP_CHECK(scan_zip_buf(r, &tiny) == FMT_ZIP);
        CHECK_FINDING(r, RULE_MALFORMED, "", NULL);
}

static void test_zip_member_data_outside_file_is_malformed(void) {
        struct scan_report *r = new_report();
        struct buf b = { 0 };
        struct zmember m[] = {
                ZM(.name = "archive/data.pkl", .data = PICKLE_CLEAN, .len = PLEN(PICKLE_CLEAN),
                   .has_central_comp_size = true, .central_comp_size = 0x7ffffff0,
                   .has_size = true, .size = 0x7ffffff0),
        };

        zip_build(&b, m, 1, NULL);
        scan_zip_buf(r, &b);
        CHECK_FINDING(r, RULE_MALFORMED, "archive/data.pkl", "past the end");
}

static void test_zip_read_bomb_is_capped(void) {
        struct scan_report *r = new_report();
        struct scan_ctx ctx = { .report = r };
        struct buf b = { 0 };
        size_t big = (size_t) 64 << 20, limit = (size_t) 1 << 20;
        uint8_t *zeros = calloc(1, big);
        struct zmember m[] = {
                ZM(.name = "bomb.pkl", .data = zeros, .len = big, .deflate = true, .has_size = true, .size = 1000),
        };
        struct zip_reader z;
        const uint8_t *data;
        size_t n;
        uint8_t *owned;

        TAP_CHECK(zeros);
        zip_build(&b, m, 1, NULL);
        TAP_CHECK(b.len < big / 100);
        TAP_CHECK(zip_open(&ctx, b.p, b.len, &z) == 0);
        TAP_CHECK(zip_read(&ctx, &z, zip_get(&z, 0), limit, &data, &n, &owned) == ZIP_READ_PREFIX);
        TAP_CHECK(n == limit && owned == data);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "bomb.pkl", "more than the 1000 bytes");
        free(owned);
        zip_close(&z);
}

static void test_zip_read_whole_and_prefix(void) {
        struct scan_report *r = new_report();
        struct scan_ctx ctx = { .report = r };
        struct buf b = { 0 };
        static char text[5000];
        struct zip_reader z;
        const uint8_t *data;
        size_t n;
        uint8_t *owned;

        for (size_t i = 0; i < sizeof(text); i++)
                text[i] = (char) ('a' + i % 23);
        struct zmember m[] = {
                ZM(.name = "d", .data = text, .len = sizeof(text), .deflate = true),
                ZM(.name = "s", .data = text, .len = sizeof(text)),
        };
        zip_build(&b, m, 2, NULL);
        TAP_CHECK(zip_open(&ctx, b.p, b.len, &z) == 0);

        /* Deflated, whole: exact bytes, CRC checked. */
        TAP_CHECK(zip_read(&ctx, &z, zip_get(&z, 0), 1 << 20, &data, &n, &owned) == ZIP_READ_WHOLE);
        TAP_CHECK(n == sizeof(text) && memcmp(data, text, n) == 0);
        free(owned);
        /* Deflated, exactly as long as the limit: still whole. */
        TAP_CHECK(zip_read(&ctx, &z, zip_get(&z, 0), sizeof(text), &data, &n, &owned) == ZIP_READ_WHOLE);
        free(owned);
        /* Deflated, prefix. */
        TAP_CHECK(zip_read(&ctx, &z, zip_get(&z, 0), 100, &data, &n, &owned) == ZIP_READ_PREFIX);
        TAP_CHECK(n == 100 && memcmp(data, text, 100) == 0);
        free(owned);
        /* Stored: in place, no copy. */
        TAP_CHECK(zip_read(&ctx, &z, zip_get(&z, 1), 1 << 20, &data, &n, &owned) == ZIP_READ_WHOLE);
        TAP_CHECK(owned == NULL && data > b.p && data < b.p + b.len && n == sizeof(text));
        TAP_CHECK(zip_read(&ctx, &z, zip_get(&z, 1), 10, &data, &n, &owned) == ZIP_READ_PREFIX);
        TAP_CHECK(n == 10 && owned == NULL);
        CHECK_NO_FINDINGS(r);
        zip_close(&z);
}

static void test_zip_corrupt_deflate_is_malformed(void) {
        struct scan_report *r = new_report();
        struct scan_ctx ctx = { .report = r };
        struct buf b = { 0 };
        static char text[4000];
        struct zip_reader z;
        const uint8_t *data;
        size_t n;
        uint8_t *owned;

        for (size_t i = 0; i < sizeof(text); i++)
                text[i] = (char) (i * 7 + i / 13);
        struct zmember m[] = {
                ZM(.name = "d", .data = text, .len = sizeof(text), .deflate = true),
        };
        zip_build(&b, m, 1, NULL);
        TAP_CHECK(zip_open(&ctx, b.p, b.len, &z) == 0);
        /* Cut the compressed data short by claiming fewer compressed bytes. */
        struct zip_entry e = *zip_get(&z, 0);
        e.comp_size = e.comp_size / 2;
        TAP_CHECK(zip_read(&ctx, &z, &e, 1 << 20, &data, &n, &owned) == ZIP_READ_BROKEN);
        TAP_CHECK(n < sizeof(text));
        free(owned);
        CHECK_FINDING(r, RULE_MALFORMED, "d", "deflate stream");
        zip_close(&z);
}

/* ---- npy ---- */

static void npy_build(struct buf *b, uint8_t major, const char *dict, const void *data, size_t n) {
        size_t prefix = 6 + 2 + (major == 1 ? 2 : 4);
        size_t hlen = strlen(dict) + 1;
        size_t pad = (64 - (prefix + hlen) % 64) % 64;

        b_put(b, "\x93NUMPY", 6);
        b_u8(b, major);
        b_u8(b, 0);
        if (major == 1)
                b_le16(b, (uint16_t) (hlen + pad));
        else
                b_le32(b, (uint32_t) (hlen + pad));
        b_str(b, dict);
        for (size_t i = 0; i < pad; i++)
                b_u8(b, ' ');
        b_u8(b, '\n');
        b_put(b, data, n);
}

static struct scan_report *npy_scan_dict(uint8_t major, const char *dict, const void *data, size_t n) {
        struct scan_report *r = new_report();
        struct scan_ctx ctx = { .report = r };
        struct buf b = { 0 };

        snprintf(ctx.member, sizeof(ctx.member), "x.npy");
        npy_build(&b, major, dict, data, n);
        TAP_CHECK(npy_sniff(b.p, b.len));
        npy_scan(&ctx, b.p, b.len);
        free(b.p);
        return r;
}

static const uint8_t ZERO64[64];

static void test_npy_numeric_versions_are_clean(void) {
        struct scan_report *r;

        r = npy_scan_dict(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", ZERO64, 48);
        CHECK_NO_FINDINGS(r);
        r = npy_scan_dict(2, "{'descr': '<i4', 'fortran_order': True, 'shape': (4,), }", ZERO64, 16);
        CHECK_NO_FINDINGS(r);
        r = npy_scan_dict(3, "{'descr': [('\xc3\xa9t\xc3\xa9', '<u2'), ('b', '|b1', (3,))], 'fortran_order': False, 'shape': (2,), }",
                          ZERO64, 10);
        CHECK_NO_FINDINGS(r);
        /* A 0-d array has one element. */
        r = npy_scan_dict(1, "{\"descr\": \"|u1\", \"fortran_order\": False, \"shape\": ()}", ZERO64, 1);
        CHECK_NO_FINDINGS(r);
        /* Python 2 wrote longs with an L suffix; numpy filters it. */
        r = npy_scan_dict(1, "{'descr': '<c16', 'fortran_order': False, 'shape': (2L, 1L), }", ZERO64, 32);
        CHECK_NO_FINDINGS(r);
        r = npy_scan_dict(1, "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", ZERO64, 12);
        CHECK_NO_FINDINGS(r);
        r = npy_scan_dict(1, "{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (0,), }", ZERO64, 0);
        CHECK_NO_FINDINGS(r);
}

static void test_npy_short_data_is_malformed(void) {
        struct scan_report *r = npy_scan_dict(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }",
                                              ZERO64, 39);
        CHECK_FINDING(r, RULE_MALFORMED, "x.npy", "needs 40 bytes");
        TAP_CHECK(r->findings[0].severity == SEV_HIGH);

        r = npy_scan_dict(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", ZERO64, 8);
        CHECK_FINDING(r, RULE_MALFORMED, "x.npy", "after the array");
        TAP_CHECK(r->findings[0].severity == SEV_LOW);
}

static void test_npy_object_array_pickle_is_scanned(void) {
        struct scan_report *r;

        r = npy_scan_dict(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
                          PICKLE_EVIL, PLEN(PICKLE_EVIL));
        TAP_CHECK(has_global(r, "os", "getcwd", "x.npy"));

        /* An object field inside a structured dtype. */
        r = npy_scan_dict(1, "{'descr': [('a', '<i4'), ('b', [('c', '|O')])], 'fortran_order': False, 'shape': (1,), }",
                          PICKLE_EVIL, PLEN(PICKLE_EVIL));
        TAP_CHECK(has_global(r, "os", "getcwd", "x.npy"));

        /* A subarray of objects. */
        r = npy_scan_dict(2, "{'descr': [('a', '<O8', (2, 2))], 'fortran_order': False, 'shape': (1,), }",
                          PICKLE_EVIL, PLEN(PICKLE_EVIL));
        TAP_CHECK(has_global(r, "os", "getcwd", "x.npy"));
        CHECK_NO_FINDINGS(r);

        /* descr_to_dtype() unpacks a 2-character string field as (name, type). */
        r = npy_scan_dict(1, "{'descr': ['aO'], 'fortran_order': False, 'shape': (1,), }",
                          PICKLE_EVIL, PLEN(PICKLE_EVIL));
        TAP_CHECK(has_global(r, "os", "getcwd", "x.npy"));

        /* A spelling numpy accepts that we do not model, naming objects. */
        r = npy_scan_dict(1, "{'descr': 'i4,O', 'fortran_order': False, 'shape': (1,), }",
                          PICKLE_EVIL, PLEN(PICKLE_EVIL));
        TAP_CHECK(has_global(r, "os", "getcwd", "x.npy"));
        CHECK_FINDING(r, RULE_MALFORMED, "x.npy", "not understood");
}

static void test_npy_bad_headers_are_malformed(void) {
        static const char *dicts[] = {
                "{'descr': '<f8', 'fortran_order': False}",
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                "{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}",
                "{'descr': '<f8', 'fortran_order': False, 'shape': [1]}",
                "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1.5,)}",
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} junk",
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)",
                "{'descr': '<x9', 'fortran_order': False, 'shape': (1,)}",
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
                "['descr', '<f8']",
                "{'descr': __import__('os'), 'fortran_order': False, 'shape': (1,)}",
        };

        for (size_t i = 0; i < sizeof(dicts) / sizeof(dicts[0]); i++) {
                struct scan_report *r = npy_scan_dict(1, dicts[i], ZERO64, 8);
                if (count_findings(r, RULE_MALFORMED, "x.npy", NULL) == 0)
                        fprintf(stderr, "# not reported: %s\n", dicts[i]);
                CHECK_FINDING(r, RULE_MALFORMED, "x.npy", NULL);
                free(r);
        }
}

static void test_npy_version_and_size_limits(void) {
        struct scan_report *r = new_report();
        struct scan_ctx ctx = { .report = r };
        struct buf b = { 0 };

        /* Unknown version. */
        b_put(&b, "\x93NUMPY\x04\x00\x10\x00", 10);
        b_str(&b, "{}              \n");
        npy_scan(&ctx, b.p, b.len);
        CHECK_FINDING(r, RULE_MALFORMED, "", "version 4.0");

        /* A header beyond numpy's 10000 characters. */
        r = new_report();
        ctx.report = r;
        char *dict = malloc(12000);
        TAP_CHECK(dict);
        snprintf(dict, 12000, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), %*s}", 11000, "");
        b.len = 0;
        npy_build(&b, 2, dict, ZERO64, 8);
        npy_scan(&ctx, b.p, b.len);
        CHECK_FINDING(r, RULE_MALFORMED, "", "10000");

        /* A header length beyond what we parse: refused without reading it. */
        r = new_report();
        ctx.report = r;
        b.len = 0;
        b_put(&b, "\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12);
        npy_scan(&ctx, b.p, b.len);
        CHECK_FINDING(r, RULE_MALFORMED, "", "more than");

        /* Truncated inside the header. */
        r = new_report();
        ctx.report = r;
        b.len = 0;
        npy_build(&b, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", ZERO64, 8);
        npy_scan(&ctx, b.p, 30);
        CHECK_FINDING(r, RULE_MALFORMED, "", "inside the header");
        free(dict);
}

static void test_npz_is_recognised_and_object_members_scanned(void) {
        struct scan_report *r = new_report();
        struct buf a = { 0 }, o = { 0 }, z = { 0 };
        static uint8_t big[1 << 20];

        npy_build(&a, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (262144,), }", big, sizeof(big));
        npy_build(&o, 1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", PICKLE_EVIL, PLEN(PICKLE_EVIL));
        struct zmember m[] = {
                ZM(.name = "arr_0.npy", .data = a.p, .len = a.len, .deflate = true),
                ZM(.name = "arr_1.npy", .data = o.p, .len = o.len, .deflate = true),
                ZM(.name = "arr_2.npy", .data = a.p, .len = a.len),
        };

        zip_build(&z, m, 3, NULL);
        TAP_CHECK(scan_zip_buf(r, &z) == FMT_NPZ);
        CHECK_NO_FINDINGS(r);
        TAP_CHECK(has_global(r, "os", "getcwd", "arr_1.npy"));
}

static void test_npz_member_with_long_header_is_read(void) {
        struct scan_report *r = new_report();
        struct buf o = { 0 }, z = { 0 };
        char *dict = malloc(30000);

        /* An object array's header may exceed numpy's 10000-character cap (its
         * loader lifts the cap with allow_pickle=True) and the sniffed prefix. */
        TAP_CHECK(dict);
        snprintf(dict, 30000, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), %*s}", 25000, "");
        npy_build(&o, 2, dict, PICKLE_EVIL, PLEN(PICKLE_EVIL));
        struct zmember m[] = {
                ZM(.name = "arr_0.npy", .data = o.p, .len = o.len, .deflate = true),
        };

        zip_build(&z, m, 1, NULL);
        TAP_CHECK(scan_zip_buf(r, &z) == FMT_NPZ);
        CHECK_FINDING(r, RULE_MALFORMED, "arr_0.npy", "10000");
        TAP_CHECK(has_global(r, "os", "getcwd", "arr_0.npy"));
        free(dict);
}

static void test_npz_numeric_member_checked_without_inflating(void) {
        struct scan_report *r = new_report();
        struct buf a = { 0 }, z = { 0 };
        static uint8_t data[1 << 16];

        /* Claims 2^20 floats, carries 2^14: the short data is found from the
         * header and the directory's size alone. */
        npy_build(&a, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576,), }", data, sizeof(data));
        struct zmember m[] = {
                ZM(.name = "arr_0.npy", .data = a.p, .len = a.len, .deflate = true),
        };

        zip_build(&z, m, 1, NULL);
        TAP_CHECK(scan_zip_buf(r, &z) == FMT_NPZ);
        CHECK_FINDING(r, RULE_MALFORMED, "arr_0.npy", "needs 4194304 bytes");
}

/* ---- tar ---- */

static void tar_header(struct buf *b, const char *name, const char *prefix, char type, size_t size) {
        uint8_t h[512];
        unsigned sum = 0;

        memset(h, 0, sizeof(h));
        memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
        memcpy(h + 100, "0000644", 7);
        memcpy(h + 108, "0001750", 7);
        memcpy(h + 116, "0001750", 7);
        char octal[24];
        TAP_CHECK(size < (size_t) 1 << 33);   /* 11 octal digits */
        snprintf(octal, sizeof(octal), "%011zo", size);
        memcpy(h + 124, octal, 11);
        memcpy(h + 136, "14717256041", 11);
        h[156] = (uint8_t) type;
        memcpy(h + 257, "ustar\0" "00", 8);
        if (prefix)
                memcpy(h + 345, prefix, strlen(prefix));
        memset(h + 148, ' ', 8);
        for (size_t i = 0; i < 512; i++)
                sum += h[i];
        snprintf((char *) h + 148, 8, "%06o", sum);
        b_put(b, h, 512);
}

static void tar_data(struct buf *b, const void *d, size_t n) {
        static const uint8_t zero[512];
        b_put(b, d, n);
        b_put(b, zero, (512 - n % 512) % 512);
}

static void tar_end(struct buf *b) {
        static const uint8_t zero[1024];
        b_put(b, zero, sizeof(zero));
}

static void test_tar_iterates_with_long_names(void) {
        struct scan_report *r = new_report();
        struct scan_ctx ctx = { .report = r };
        struct buf b = { 0 };
        char longname[300];
        struct tar_reader t;
        struct tar_member m;

        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';

        tar_header(&b, "sys_info", NULL, '0', 5);
        tar_data(&b, "hello", 5);
        tar_header(&b, "././@LongLink", NULL, 'L', strlen(longname) + 1);
        tar_data(&b, longname, strlen(longname) + 1);
        tar_header(&b, "short", NULL, '0', 3);
        tar_data(&b, "abc", 3);
        static const char pax[] = "29 path=dir/from/pax/records\n";
        tar_header(&b, "PaxHeaders/x", NULL, 'x', sizeof(pax) - 1);
        tar_data(&b, pax, sizeof(pax) - 1);
        tar_header(&b, "ignored", NULL, '0', 0);
        tar_header(&b, "storages", "some/prefix", '0', PLEN(PICKLE_EVIL));
        tar_data(&b, PICKLE_EVIL, PLEN(PICKLE_EVIL));
        tar_header(&b, "tensors", NULL, '5', 0);
        tar_end(&b);

        TAP_CHECK(tar_sniff(b.p, b.len));
        TAP_CHECK(tar_open(&ctx, b.p, b.len, &t) == 0);

        TAP_CHECK(tar_next(&t, &m) == 1);
        TAP_CHECK_STR(m.name, "sys_info");
        TAP_CHECK(m.size == 5 && memcmp(m.data, "hello", 5) == 0 && m.is_file && m.type == '0');

        TAP_CHECK(tar_next(&t, &m) == 1);
        TAP_CHECK_STR(m.name, longname);
        TAP_CHECK(m.size == 3 && memcmp(m.data, "abc", 3) == 0);

        TAP_CHECK(tar_next(&t, &m) == 1);
        TAP_CHECK_STR(m.name, "dir/from/pax/records");
        TAP_CHECK(m.size == 0 && m.data == NULL);

        TAP_CHECK(tar_next(&t, &m) == 1);
        TAP_CHECK_STR(m.name, "some/prefix/storages");
        TAP_CHECK(m.size == PLEN(PICKLE_EVIL) && memcmp(m.data, PICKLE_EVIL, m.size) == 0);

        TAP_CHECK(tar_next(&t, &m) == 1);
        TAP_CHECK_STR(m.name, "tensors");
        TAP_CHECK(m.type == '5' && !m.is_file);

        TAP_CHECK(tar_next(&t, &m) == 0);
        TAP_CHECK(tar_next(&t, &m) == 0);
        CHECK_NO_FINDINGS(r);
}

static void test_tar_bad_checksum_is_malformed(void) {
        struct scan_report *r = new_report();
        struct scan_ctx ctx = { .report = r };
        struct buf b = { 0 };
        struct tar_reader t;
        struct tar_member m;

        tar_header(&b, "pickle", NULL, '0', 4);
        tar_data(&b, "abcd", 4);
        tar_header(&b, "storages", NULL, '0', 4);
        tar_data(&b, "efgh", 4);
        tar_end(&b);
        b.p[512 + 512] ^= 0x01;   /* second header's name */

        tar_open(&ctx, b.p, b.len, &t);
        TAP_CHECK(tar_next(&t, &m) == 1);
        TAP_CHECK(tar_next(&t, &m) == -EBADMSG);
        TAP_CHECK(tar_next(&t, &m) == 0);
        CHECK_FINDING(r, RULE_MALFORMED, "", "checksum");
        /* A corrupted first header is not a tar at all. */
        b.p[0] ^= 0x01;
        b.p[257] = 'X';
        TAP_CHECK(!tar_sniff(b.p, b.len));
}

static void test_tar_truncated_and_traversal(void) {
        struct scan_report *r = new_report();
        struct scan_ctx ctx = { .report = r };
        struct buf b = { 0 };
        struct tar_reader t;
        struct tar_member m;

        tar_header(&b, "../escape", NULL, '0', 4);
        tar_data(&b, "abcd", 4);
        tar_header(&b, "link", NULL, '2', 0);
        memcpy(b.p + b.len - 512 + 157, "/etc/passwd", 11);
        /* fix the checksum after editing the link name */
        {
                uint8_t *h = b.p + b.len - 512;
                unsigned sum = 0;
                memset(h + 148, ' ', 8);
                for (size_t i = 0; i < 512; i++)
                        sum += h[i];
                snprintf((char *) h + 148, 8, "%06o", sum);
        }
        tar_header(&b, "big", NULL, '0', 4096);
        tar_data(&b, "x", 1);

        tar_open(&ctx, b.p, b.len, &t);
        TAP_CHECK(tar_next(&t, &m) == 1);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "../escape", "'..'");
        TAP_CHECK(tar_next(&t, &m) == 1);
        TAP_CHECK(m.type == '2' && m.link_len == 11);
        CHECK_FINDING(r, RULE_ARCHIVE_TAMPERED, "link", "link target");
        TAP_CHECK(tar_next(&t, &m) == -EBADMSG);
        CHECK_FINDING(r, RULE_MALFORMED, "", "past the end");
}

static void test_tar_sniff(void) {
        struct buf b = { 0 };
        uint8_t junk[1024];

        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (uint8_t) (i * 31 + 7);
        TAP_CHECK(!tar_sniff(junk, sizeof(junk)));
        TAP_CHECK(!tar_sniff(ZERO64, sizeof(ZERO64)));

        /* A V7 header: no magic, right checksum. */
        tar_header(&b, "pickle", NULL, '0', 0);
        memset(b.p + 257, 0, 8);
        {
                unsigned sum = 0;
                memset(b.p + 148, ' ', 8);
                for (size_t i = 0; i < 512; i++)
                        sum += b.p[i];
                snprintf((char *) b.p + 148, 8, "%06o", sum);
        }
        TAP_CHECK(tar_sniff(b.p, b.len));
        b.p[0] = 'q';
        TAP_CHECK(!tar_sniff(b.p, b.len));
}

TAP_MAIN(
        TAP_CASE(test_torch_zip_clean_has_no_findings),
        TAP_CASE(test_torch_zip_pickle_under_any_name_is_scanned),
        TAP_CASE(test_torch_zip_data_pkl_scanned_whatever_it_looks_like),
        TAP_CASE(test_torchscript_archive_is_flagged),
        TAP_CASE(test_generic_zip_is_unsupported_but_scanned),
        TAP_CASE(test_zip_member_names_are_nested_under_ctx_member),
        TAP_CASE(test_zip_inside_zip_is_scanned),
        TAP_CASE(test_zip64_archive_is_read),
        TAP_CASE(test_zip_local_name_mismatch_is_tampered),
        TAP_CASE(test_zip_flag_bits_are_tampered),
        TAP_CASE(test_zip_local_flags_differ_is_tampered),
        TAP_CASE(test_zip_data_descriptor_must_agree),
        TAP_CASE(test_zip_crc_mismatch_is_tampered),
        TAP_CASE(test_zip_duplicate_names_are_tampered),
        TAP_CASE(test_zip_bad_names_are_tampered),
        TAP_CASE(test_zip_method_and_size_mismatch_are_tampered),
        TAP_CASE(test_zip_overlapping_members_are_tampered),
        TAP_CASE(test_zip_entry_count_mismatch_is_tampered),
        TAP_CASE(test_zip_prepended_and_trailing_data_are_tampered),
        TAP_CASE(test_zip_unknown_method_is_unsupported),
        TAP_CASE(test_zip_truncated_is_malformed),
        TAP_CASE(test_zip_member_data_outside_file_is_malformed),
        TAP_CASE(test_zip_read_bomb_is_capped),
        TAP_CASE(test_zip_read_whole_and_prefix),
        TAP_CASE(test_zip_corrupt_deflate_is_malformed),
        TAP_CASE(test_npy_numeric_versions_are_clean),
        TAP_CASE(test_npy_short_data_is_malformed),
        TAP_CASE(test_npy_object_array_pickle_is_scanned),
        TAP_CASE(test_npy_bad_headers_are_malformed),
        TAP_CASE(test_npy_version_and_size_limits),
        TAP_CASE(test_npz_is_recognised_and_object_members_scanned),
        TAP_CASE(test_npz_member_with_long_header_is_read),
        TAP_CASE(test_npz_numeric_member_checked_without_inflating),
        TAP_CASE(test_tar_iterates_with_long_names),
        TAP_CASE(test_tar_bad_checksum_is_malformed),
        TAP_CASE(test_tar_truncated_and_traversal),
        TAP_CASE(test_tar_sniff),
)
