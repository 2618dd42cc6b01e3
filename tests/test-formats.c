/* test-formats.c — unit tests for the safetensors, GGUF, Git LFS pointer and
 * chat-template checkers: every malformation branch with its reason, limits and
 * counts near overflow, truncation at every byte of small valid files, sparse
 * 20 GB files decided from their headers, and the template rules on hostile and
 * real-world templates. Every file is built here, byte by byte. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "json.h"
#include "lfs.h"
#include "report.h"
#include "safetensors.h"
#include "scan.h"
#include "tap.h"
#include "template.h"

/* Deeper than the template checker's bracket limit. */
#define TEMPLATE_TEST_DEPTH 80

/* ---- byte buffers ---- */

struct buf {
        uint8_t *p;
        size_t len, cap;
        bool be;                /* GGUF integers big-endian */
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

static void b_str(struct buf *b, const char *s) {
        b_put(b, s, strlen(s));
}

static void b_u8(struct buf *b, uint8_t v) {
        b_put(b, &v, 1);
}

static void b_u32(struct buf *b, uint32_t v) {
        uint8_t x[4];
        for (int i = 0; i < 4; i++)
                x[b->be ? 3 - i : i] = (uint8_t) (v >> (8 * i));
        b_put(b, x, 4);
}

static void b_u64(struct buf *b, uint64_t v) {
        uint8_t x[8];
        for (int i = 0; i < 8; i++)
                x[b->be ? 7 - i : i] = (uint8_t) (v >> (8 * i));
        b_put(b, x, 8);
}

static void b_zero(struct buf *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                b_u8(b, 0);
}

/* ---- scanning ---- */

static struct scan_report *scan(const void *p, size_t n) {
        struct scan_report *r = malloc(sizeof(*r));
        TAP_CHECK(r);
        report_init(r);
        scan_buffer(r, p, n);
        return r;
}

static const struct finding *find(const struct scan_report *r, enum mg_rule rule, const char *substr) {
        for (uint32_t i = 0; i < r->n_findings; i++)
                if (r->findings[i].rule == rule && (!substr || strstr(r->findings[i].message, substr)))
                        return &r->findings[i];
        return NULL;
}

static void dump(const struct scan_report *r) {
        for (uint32_t i = 0; i < r->n_findings; i++)
                fprintf(stderr, "#   %s %s: %s\n", severity_name(r->findings[i].severity),
                        rule_name(r->findings[i].rule), r->findings[i].message);
}

#define CHECK_FINDING(r, rule, substr) do {                                      \
        if (!find((r), (rule), (substr))) {                                      \
                fprintf(stderr, "# no %s finding with \"%s\"\n", rule_name(rule), (substr) ? (substr) : ""); \
                dump(r);                                                         \
                TAP_CHECK(!"finding");                                           \
        }                                                                        \
} while (0)

#define CHECK_CLEAN(r) do {                                                      \
        if ((r)->n_findings) {                                                   \
                dump(r);                                                         \
                TAP_CHECK((r)->n_findings == 0);                                 \
        }                                                                        \
} while (0)

/* ---- safetensors ---- */

/* header text, then `data_len` data bytes (a pattern). */
static struct buf st_build(const char *header, size_t data_len) {
        struct buf b = { 0 };
        uint8_t n[8];
        uint64_t hl = strlen(header);

        for (int i = 0; i < 8; i++)
                n[i] = (uint8_t) (hl >> (8 * i));
        b_put(&b, n, 8);
        b_str(&b, header);
        for (size_t i = 0; i < data_len; i++)
                b_u8(&b, (uint8_t) i);
        return b;
}

static void st_expect(const char *header, size_t data_len, const char *reason) {
        struct buf b = st_build(header, data_len);
        struct scan_report *r = scan(b.p, b.len);

        TAP_CHECK(r->format == FMT_SAFETENSORS);
        if (reason)
                CHECK_FINDING(r, RULE_MALFORMED, reason);
        else
                CHECK_CLEAN(r);
        free(r);
        free(b.p);
}

static const char st_valid[] =
        "{\"__metadata__\":{\"license\":\"apache-2.0\",\"format\":\"pt\"},"
        "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[24,28]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[28,36]},"
        "\"z\":{\"dtype\":\"BF16\",\"shape\":[0,5],\"data_offsets\":[36,36]}}    ";

static void test_safetensors_valid_is_clean_and_reports_license(void) {
        struct buf b = st_build(st_valid, 36);
        struct scan_report *r = scan(b.p, b.len);

        TAP_CHECK(r->format == FMT_SAFETENSORS);
        CHECK_CLEAN(r);
        TAP_CHECK(r->has_license);
        TAP_CHECK_STR(r->license, "apache-2.0");
        free(r);
        free(b.p);
        st_expect("{}", 0, NULL);
        st_expect("  \n\t{}", 0, NULL);
        st_expect("{\"__metadata__\":null}", 0, NULL);
        st_expect("{\"q\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[0,3]}}", 3, NULL);
        st_expect("{\"q\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[0,3]}}", 3, NULL);
        st_expect("{\"q\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8],\"extra\":1}}", 8, NULL);
}

static void test_safetensors_truncated_at_every_byte_is_malformed(void) {
        struct buf b = st_build(st_valid, 36);

        for (size_t k = 0; k < b.len; k++) {
                struct scan_report *r = scan(b.p, k);
                if (r->format == FMT_SAFETENSORS && !find(r, RULE_MALFORMED, NULL)) {
                        fprintf(stderr, "# prefix of %zu bytes not malformed\n", k);
                        TAP_CHECK(0);
                }
                TAP_CHECK(k >= 9 || r->format != FMT_SAFETENSORS);
                free(r);
        }
        free(b.p);
}

static void test_safetensors_sniff_is_strict(void) {
        struct buf b;

        TAP_CHECK(!safetensors_sniff((const uint8_t *) "abcdefgh{\"x\":1}", 16));
        TAP_CHECK(!safetensors_sniff((const uint8_t *) "\x01\0\0\0\0\0\0\0{", 9));        /* N < 2 */
        TAP_CHECK(!safetensors_sniff((const uint8_t *) "\x02\0\0\0\0\0\0\0[]", 10));      /* not an object */
        TAP_CHECK(!safetensors_sniff((const uint8_t *) "\x02\0\0\0\0\0\x01\0{}", 10));    /* N >= 2^40 */
        TAP_CHECK(safetensors_sniff((const uint8_t *) "\x02\0\0\0\0\0\0\0{}", 10));
        TAP_CHECK(safetensors_sniff((const uint8_t *) "\x05\0\0\0\0\0\0\0 \r\n{}", 13));
        TAP_CHECK(safetensors_sniff((const uint8_t *) "\xff\xff\xff\xff\xff\0\0\0{", 9)); /* 2^40 - 1 */
        /* Whitespace only up to the header's end. */
        TAP_CHECK(!safetensors_sniff((const uint8_t *) "\x02\0\0\0\0\0\0\0  {}", 12));
        /* A Git LFS pointer is never safetensors. */
        b = (struct buf) { 0 };
        b_str(&b, "version https://git-lfs.github.com/spec/v1\noid sha256:");
        for (int i = 0; i < 64; i++)
                b_u8(&b, 'a');
        b_str(&b, "\nsize 12\n");
        TAP_CHECK(!safetensors_sniff(b.p, b.len));
        TAP_CHECK(scan_sniff(b.p, b.len) == FMT_LFS_POINTER);
        free(b.p);
}

static void test_safetensors_header_length_limits(void) {
        uint8_t f[64] = { 0 };
        struct scan_report *r;

        /* 8 MB claimed, 64 bytes present: the LFS-pointer symptom. */
        f[2] = 0x80;
        f[8] = '{';
        r = scan(f, sizeof(f));
        CHECK_FINDING(r, RULE_MALFORMED, "header too large: 8 MB header in a 64-byte file");
        free(r);
        /* Exactly the 100 MB ceiling is judged against the file; one more is over it. */
        memset(f, 0, 8);
        f[0] = 0x00, f[1] = 0xe1, f[2] = 0xf5, f[3] = 0x05;   /* 100000000 */
        r = scan(f, sizeof(f));
        CHECK_FINDING(r, RULE_MALFORMED, "header too large: 100 MB header in a 64-byte file");
        free(r);
        f[0] = 0x01;
        r = scan(f, sizeof(f));
        CHECK_FINDING(r, RULE_MALFORMED, "over the 100000000-byte limit");
        free(r);
        memset(f, 0xff, 5);
        r = scan(f, sizeof(f));
        CHECK_FINDING(r, RULE_MALFORMED, "over the 100000000-byte limit");
        free(r);
}

static void test_safetensors_every_malformation_names_its_reason(void) {
        st_expect("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},}", 1, "not valid JSON");
        st_expect("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                  "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, "names 'w' twice");
        st_expect("{\"w\":{\"dtype\":\"U8\",\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                  "has the field 'dtype' twice");
        st_expect("{\"w\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16, "unknown dtype 'F128'");
        st_expect("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'f32'");
        st_expect("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype that is not a string");
        st_expect("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "has no dtype");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "has no shape");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "has no data_offsets");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, "not a list");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape entry");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, "shape entry");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, "shape entry");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "data_offsets that are not two");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "data_offsets that are not two");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"a\":0}}}", 4, "data_offsets that are not two");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20, "span 20 bytes");
        st_expect("{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, "end is before the start");
        st_expect("{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", 1, "do not fill whole bytes");
        st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
        st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "a gap of 4 bytes");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "starts at byte 4, not 0");
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6, "2 bytes belong to no tensor");
        st_expect("{\"w\":{\"dtype\":\"U8\",\"shape\":[64],\"data_offsets\":[0,64]}}", 8,
                  "ends at byte 64 of the data, but the file holds only 8 bytes");
        st_expect("{}", 4, "4 bytes belong to no tensor");
        st_expect("{\"__metadata__\":{\"epoch\":3}}", 0, "value 'epoch' is not a string");
        st_expect("{\"__metadata__\":[\"x\"]}", 0, "not an object of strings");
        st_expect("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, "has the key 'a' twice");
        st_expect("{\"w\":[1]}", 0, "is not an object");
        st_expect("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}\x01", 1, "not valid JSON");
}

static void test_safetensors_invalid_utf8_is_malformed(void) {
        static const char *const bad[] = {
                "{\"\xff\":1}", "{\"\xc0\x80\":1}", "{\"\xed\xa0\x80\":1}", "{\"\xf4\x90\x80\x80\":1}",
                "{\"\xe2\x82\":1}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                st_expect(bad[i], 0, "not valid UTF-8");
        st_expect("{\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                  NULL);
}

static void test_safetensors_sizes_near_overflow(void) {
        st_expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,0]}}", 0,
                  "overflows 64 bits");
        st_expect("{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}", 0,
                  "overflows 64 bits");
        /* 2^61 x 8 bytes fits in 64 bits only as bits / 8: still refused (bits overflow). */
        st_expect("{\"w\":{\"dtype\":\"U8\",\"shape\":[18446744073709551615],"
                  "\"data_offsets\":[0,18446744073709551615]}}", 0, "overflows 64 bits");
        st_expect("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}", 0,
                  "data_offsets that are not two");
        st_expect("{\"w\":{\"dtype\":\"U8\",\"shape\":[1152921504606846975],"
                  "\"data_offsets\":[0,1152921504606846975]}}", 0, "file holds only 0 bytes");
        /* A zero dimension after an overflowing product: still refused, as the reference does. */
        st_expect("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}", 0,
                  "overflows 64 bits");
        st_expect("{\"w\":{\"dtype\":\"U8\",\"shape\":[0,4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, NULL);
}

static void test_safetensors_license_keys(void) {
        static const struct {
                const char *header, *license;
        } cases[] = {
                { "{\"__metadata__\":{\"License\":\"MIT\"}}", "MIT" },
                { "{\"__metadata__\":{\"LICENSE\":\"cc-by-nc-4.0\"}}", "cc-by-nc-4.0" },
                { "{\"__metadata__\":{\"modelspec.license\":\"openrail\"}}", "openrail" },
                { "{\"__metadata__\":{\"modelspec.license\":\"x\",\"license\":\"apache-2.0\"}}", "apache-2.0" },
                { "{\"__metadata__\":{\"license\":\"bad\\u0007name\"}}", "bad\\x07name" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct buf b = st_build(cases[i].header, 0);
                struct scan_report *r = scan(b.p, b.len);
                CHECK_CLEAN(r);
                TAP_CHECK(r->has_license);
                TAP_CHECK_STR(r->license, cases[i].license);
                free(r);
                free(b.p);
        }
        struct buf b = st_build("{\"__metadata__\":{\"license\":\"\",\"licence\":\"x\"}}", 0);
        struct scan_report *r = scan(b.p, b.len);
        TAP_CHECK(!r->has_license);
        free(r);
        free(b.p);
}

/* ---- GGUF ---- */

enum { G_U8, G_I8, G_U16, G_I16, G_U32, G_I32, G_F32, G_BOOL, G_STR, G_ARR, G_U64, G_I64, G_F64 };

static void g_str(struct buf *b, const char *s) {
        b_u64(b, strlen(s));
        b_str(b, s);
}

static void g_key(struct buf *b, const char *key, uint32_t type) {
        g_str(b, key);
        b_u32(b, type);
}

static void g_header(struct buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
        b_str(b, "GGUF");
        b_u32(b, version);
        b_u64(b, n_tensors);
        b_u64(b, n_kv);
}

static void g_tensor(struct buf *b, const char *name, uint32_t n_dims, const uint64_t *dims, uint32_t type,
                     uint64_t offset) {
        g_str(b, name);
        b_u32(b, n_dims);
        for (uint32_t i = 0; i < n_dims; i++)
                b_u64(b, dims[i]);
        b_u32(b, type);
        b_u64(b, offset);
}

static void g_align(struct buf *b, size_t a) {
        while (b->len % a)
                b_u8(b, 0);
}

/* A valid v3 file: every value type, nested arrays, a license, a chat template and
 * four tensors (F32, F16, Q8_0, Q4_K), data not padded after the last one. */
static struct buf gguf_valid(bool be) {
        struct buf b = { .be = be };
        uint64_t d1[] = { 8 }, d2[] = { 4, 2 }, d3[] = { 64 }, d4[] = { 256, 1 };

        g_header(&b, 3, 4, 18);
        g_key(&b, "general.architecture", G_STR), g_str(&b, "llama");
        g_key(&b, "general.license", G_STR), g_str(&b, "apache-2.0");
        g_key(&b, "t.u8", G_U8), b_u8(&b, 1);
        g_key(&b, "t.i8", G_I8), b_u8(&b, 0xff);
        g_key(&b, "t.u16", G_U16), b_u8(&b, 1), b_u8(&b, 2);
        g_key(&b, "t.i16", G_I16), b_u8(&b, 1), b_u8(&b, 2);
        g_key(&b, "t.u32", G_U32), b_u32(&b, 7);
        g_key(&b, "t.i32", G_I32), b_u32(&b, 7);
        g_key(&b, "t.f32", G_F32), b_u32(&b, 0x3f800000);
        g_key(&b, "t.bool", G_BOOL), b_u8(&b, 1);
        g_key(&b, "t.u64", G_U64), b_u64(&b, 1);
        g_key(&b, "t.i64", G_I64), b_u64(&b, 1);
        g_key(&b, "t.f64", G_F64), b_u64(&b, 0);
        g_key(&b, "t.arr", G_ARR), b_u32(&b, G_STR), b_u64(&b, 2), g_str(&b, "a"), g_str(&b, "");
        g_key(&b, "t.nested", G_ARR), b_u32(&b, G_ARR), b_u64(&b, 2);
        b_u32(&b, G_U16), b_u64(&b, 1), b_u8(&b, 1), b_u8(&b, 0);
        b_u32(&b, G_ARR), b_u64(&b, 1), b_u32(&b, G_BOOL), b_u64(&b, 1), b_u8(&b, 0);
        g_key(&b, "general.alignment", G_U32), b_u32(&b, 32);
        g_key(&b, "tokenizer.chat_template", G_STR),
                g_str(&b, "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] }}{% endfor %}");
        g_key(&b, "t.empty", G_ARR), b_u32(&b, G_F64), b_u64(&b, 0);
        g_tensor(&b, "a", 1, d1, 0, 0);          /* F32: 32 bytes */
        g_tensor(&b, "b", 2, d2, 1, 32);         /* F16: 16 bytes, padded to 32 */
        g_tensor(&b, "c", 1, d3, 8, 64);         /* Q8_0: 2 blocks of 34 = 68, padded to 96 */
        g_tensor(&b, "d", 2, d4, 12, 160);       /* Q4_K: 1 block of 144 */
        g_align(&b, 32);
        b_zero(&b, 160 + 144);
        return b;
}

static void gguf_expect(struct buf *b, const char *reason) {
        struct scan_report *r = scan(b->p, b->len);

        TAP_CHECK(r->format == FMT_GGUF);
        if (reason)
                CHECK_FINDING(r, RULE_MALFORMED, reason);
        else
                CHECK_CLEAN(r);
        free(r);
        free(b->p);
}

static void test_gguf_valid_is_clean_both_byte_orders(void) {
        for (int be = 0; be < 2; be++) {
                struct buf b = gguf_valid(be);
                struct scan_report *r = scan(b.p, b.len);
                TAP_CHECK(r->format == FMT_GGUF);
                CHECK_CLEAN(r);
                TAP_CHECK(r->has_license);
                TAP_CHECK_STR(r->license, "apache-2.0");
                free(r);
                free(b.p);
        }
}

static void test_gguf_truncated_at_every_byte_is_malformed(void) {
        for (int be = 0; be < 2; be++) {
                struct buf b = gguf_valid(be);
                for (size_t k = 0; k < b.len; k++) {
                        struct scan_report *r = scan(b.p, k);
                        if (r->format == FMT_GGUF && !find(r, RULE_MALFORMED, NULL)) {
                                fprintf(stderr, "# prefix of %zu bytes not malformed\n", k);
                                TAP_CHECK(0);
                        }
                        TAP_CHECK(k >= 8 || r->format != FMT_GGUF);
                        free(r);
                }
                free(b.p);
        }
}

static void test_gguf_sniff_and_versions(void) {
        struct buf b = { 0 };

        TAP_CHECK(!gguf_sniff((const uint8_t *) "GGUF is a file format", 21));
        TAP_CHECK(!gguf_sniff((const uint8_t *) "GGUF", 4));
        TAP_CHECK(!gguf_sniff((const uint8_t *) "GGUF\0\0\0\0", 8));
        TAP_CHECK(gguf_sniff((const uint8_t *) "GGUF\3\0\0\0", 8));
        TAP_CHECK(gguf_sniff((const uint8_t *) "GGUF\0\0\0\3", 8));
        g_header(&b, 1, 0, 0);
        gguf_expect(&b, "version 1 is unsupported");
        b = (struct buf) { .be = true };
        g_header(&b, 1, 0, 0);
        gguf_expect(&b, "version 1 is unsupported");
        b = (struct buf) { 0 };
        g_header(&b, 4, 0, 0);
        gguf_expect(&b, "version 4 is unsupported");
        b = (struct buf) { 0 };
        g_header(&b, 2, 0, 0);
        gguf_expect(&b, NULL);
        b = (struct buf) { .be = true };
        g_header(&b, 2, 0, 0);
        gguf_expect(&b, NULL);
        b = (struct buf) { 0 };
        b_str(&b, "GGUF");
        b_u32(&b, 3);
        b_u64(&b, 0);
        gguf_expect(&b, "ends inside the header");
}

static void test_gguf_huge_counts_fail_fast(void) {
        struct buf b = { 0 };

        g_header(&b, 3, 0, UINT64_MAX);
        b_zero(&b, 64);
        gguf_expect(&b, "key/value pairs");
        b = (struct buf) { 0 };
        g_header(&b, 3, (uint64_t) 1 << 63, 0);
        b_zero(&b, 64);
        gguf_expect(&b, "tensors, but");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 1);
        g_key(&b, "a", G_ARR), b_u32(&b, G_U8), b_u64(&b, (uint64_t) 1 << 40);
        gguf_expect(&b, "over ggml's limit");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 1);
        g_key(&b, "a", G_ARR), b_u32(&b, G_U64), b_u64(&b, 1000);
        b_zero(&b, 64);
        gguf_expect(&b, "past the end of the");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 1);
        g_key(&b, "a", G_ARR), b_u32(&b, G_STR), b_u64(&b, 1u << 29);
        b_zero(&b, 64);
        gguf_expect(&b, "array of 536870912 strings");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 1);
        g_key(&b, "a", G_ARR), b_u32(&b, G_ARR), b_u64(&b, 1u << 29);
        b_zero(&b, 64);
        gguf_expect(&b, "array of 536870912 arrays");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 1);
        g_key(&b, "a", G_STR), b_u64(&b, UINT64_MAX);
        gguf_expect(&b, "over ggml's limit");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 1);
        g_key(&b, "a", G_STR), b_u64(&b, 1000), b_str(&b, "abc");
        gguf_expect(&b, "claims 1000 bytes, past the end");
}

static void test_gguf_array_nesting_limit(void) {
        for (int levels = 8; levels <= 9; levels++) {
                struct buf b = { 0 };
                g_header(&b, 3, 0, 1);
                g_key(&b, "deep", G_ARR);
                for (int i = 1; i < levels; i++)
                        b_u32(&b, G_ARR), b_u64(&b, 1);
                b_u32(&b, G_U8), b_u64(&b, 1), b_u8(&b, 7);
                gguf_expect(&b, levels == 8 ? NULL : "nests arrays more than 8 deep");
        }
}

static void test_gguf_every_malformation_names_its_reason(void) {
        struct buf b;
        uint64_t d1[] = { 8 }, d5[] = { 1, 1, 1, 1, 1 }, dneg[] = { (uint64_t) 1 << 63 };
        uint64_t dbig[] = { (uint64_t) 1 << 32, (uint64_t) 1 << 31 }, d30[] = { 30 };
        char name64[65];

        memset(name64, 'n', 64);
        name64[64] = '\0';
#define ONE_TENSOR(hdr_kv, KV, name, nd, dims, type, off, data)   \
        do {                                                      \
                b = (struct buf) { 0 };                           \
                g_header(&b, 3, 1, hdr_kv);                       \
                KV;                                               \
                g_tensor(&b, name, nd, dims, type, off);          \
                g_align(&b, 32);                                  \
                b_zero(&b, data);                                 \
        } while (0)
        ONE_TENSOR(0, (void) 0, "w", 1, d1, 0, 0, 32);
        gguf_expect(&b, NULL);
        ONE_TENSOR(0, (void) 0, "w", 1, d1, 0, 0, 31);
        gguf_expect(&b, "runs past the end");
        ONE_TENSOR(0, (void) 0, "w", 1, d1, 0, 32, 64);
        gguf_expect(&b, "has data offset 32, expected 0");
        ONE_TENSOR(0, (void) 0, "w", 5, d5, 0, 0, 32);
        gguf_expect(&b, "has 5 dimensions");
        ONE_TENSOR(0, (void) 0, "w", 1, dneg, 0, 0, 32);
        gguf_expect(&b, "negative");
        ONE_TENSOR(0, (void) 0, "w", 2, dbig, 0, 0, 32);
        gguf_expect(&b, "overflows int64");
        ONE_TENSOR(0, (void) 0, "w", 1, d1, 4, 0, 32);
        gguf_expect(&b, "unknown or removed ggml type 4");
        ONE_TENSOR(0, (void) 0, "w", 1, d1, 31, 0, 32);
        gguf_expect(&b, "unknown or removed ggml type 31");
        ONE_TENSOR(0, (void) 0, "w", 1, d1, 43, 0, 32);
        gguf_expect(&b, "unknown or removed ggml type 43");
        ONE_TENSOR(0, (void) 0, "w", 1, d1, UINT32_MAX, 0, 32);
        gguf_expect(&b, "unknown or removed ggml type 4294967295");
        ONE_TENSOR(0, (void) 0, "q", 1, d30, 8, 0, 64);
        gguf_expect(&b, "not a multiple of its 32-element block");
        ONE_TENSOR(0, (void) 0, name64, 1, d1, 0, 0, 32);
        gguf_expect(&b, "name of 64 bytes");
        name64[63] = '\0';
        ONE_TENSOR(0, (void) 0, name64, 1, d1, 0, 0, 32);
        gguf_expect(&b, NULL);
        ONE_TENSOR(1, (g_key(&b, "general.alignment", G_U32), b_u32(&b, 0)), "w", 1, d1, 0, 0, 32);
        gguf_expect(&b, "alignment 0 is not a power of two");
        ONE_TENSOR(1, (g_key(&b, "general.alignment", G_U32), b_u32(&b, 48)), "w", 1, d1, 0, 0, 32);
        gguf_expect(&b, "alignment 48 is not a power of two");
        ONE_TENSOR(1, (g_key(&b, "general.alignment", G_U64), b_u64(&b, 32)), "w", 1, d1, 0, 0, 32);
        gguf_expect(&b, "general.alignment has type 10");
        ONE_TENSOR(1, (g_key(&b, "general.alignment", G_U32), b_u32(&b, 1u << 31)), "w", 1, d1, 0, 0, 32);
        gguf_expect(&b, "data section would start past the end");
        ONE_TENSOR(1, (g_key(&b, "k", G_U32), b_u32(&b, 1)), "w", 1, d1, 0, 0, 32);
        gguf_expect(&b, NULL);
#undef ONE_TENSOR
        b = (struct buf) { 0 };
        g_header(&b, 3, 2, 0);
        g_tensor(&b, "w", 1, d1, 0, 0);
        g_tensor(&b, "w", 1, d1, 0, 32);
        g_align(&b, 32);
        b_zero(&b, 64);
        gguf_expect(&b, "two tensors are named 'w'");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 2);
        g_key(&b, "k", G_U8), b_u8(&b, 1);
        g_key(&b, "k", G_U8), b_u8(&b, 1);
        gguf_expect(&b, "the key 'k' appears twice");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 1);
        g_key(&b, "", G_U8), b_u8(&b, 1), b_zero(&b, 8);
        gguf_expect(&b, "has a key of 0 bytes");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 1);
        b_u64(&b, 65536);
        b_zero(&b, 65536 + 5);
        gguf_expect(&b, "has a key of 65536 bytes");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 1);
        g_key(&b, "k", 13), b_zero(&b, 8);
        gguf_expect(&b, "invalid value type 13");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 1);
        g_key(&b, "k", G_ARR), b_u32(&b, 99), b_u64(&b, 1), b_zero(&b, 8);
        gguf_expect(&b, "array of invalid type 99");
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 1);
        g_key(&b, "k", G_U64), b_zero(&b, 7);
        gguf_expect(&b, "ends inside the value of key 'k'");
        /* Many keys: the duplicate table grows and still finds the repeat. */
        b = (struct buf) { 0 };
        g_header(&b, 3, 0, 3001);
        for (int i = 0; i < 3000; i++) {
                char key[32];
                snprintf(key, sizeof(key), "key.%d", i);
                g_key(&b, key, G_U8), b_u8(&b, 0);
        }
        g_key(&b, "key.1234", G_U8), b_u8(&b, 0);
        gguf_expect(&b, "the key 'key.1234' appears twice");
}

static void test_gguf_chat_templates_are_checked(void) {
        static const char *const keys[] = { "tokenizer.chat_template", "tokenizer.chat_template.tool_use",
                                            "tokenizer.chat_templates", "tokenizer.chat_template." };
        static const bool checked[] = { true, true, false, false };

        for (size_t i = 0; i < 4; i++) {
                struct buf b = { 0 };
                g_header(&b, 3, 0, 1);
                g_key(&b, keys[i], G_STR), g_str(&b, "{{ cycler.__init__.__globals__ }}");
                struct scan_report *r = scan(b.p, b.len);
                TAP_CHECK(!!find(r, RULE_TEMPLATE_INJECTION, keys[i]) == checked[i]);
                free(r);
                free(b.p);
        }
        /* An array of strings under the key: each is checked. */
        struct buf b = { 0 };
        g_header(&b, 3, 0, 1);
        g_key(&b, "tokenizer.chat_template", G_ARR), b_u32(&b, G_STR), b_u64(&b, 2);
        g_str(&b, "{{ x }}"), g_str(&b, "{{ x['__class__'] }}");
        struct scan_report *r = scan(b.p, b.len);
        CHECK_FINDING(r, RULE_TEMPLATE_INJECTION, "__class__");
        free(r);
        free(b.p);
}

/* ---- sparse 20 GB files: decided from the header ---- */

#define SPARSE_SIZE ((uint64_t) 20 << 30)

static int sparse_file(const struct buf *head, uint64_t size) {
        char path[] = "/var/tmp/modelgate-test-formats-XXXXXX";
        const char *tmp = getenv("TMPDIR");
        char p2[512];
        int fd;

        if (tmp) {
                snprintf(p2, sizeof(p2), "%s/modelgate-test-formats-XXXXXX", tmp);
                fd = mkstemp(p2);
                if (fd >= 0)
                        unlink(p2);
        } else {
                fd = mkstemp(path);
                if (fd >= 0)
                        unlink(path);
        }
        TAP_CHECK(fd >= 0);
        TAP_CHECK(write(fd, head->p, head->len) == (ssize_t) head->len);
        if (ftruncate(fd, (off_t) size) < 0) {
                fprintf(stderr, "# cannot make a %llu-byte sparse file here: %s\n", (unsigned long long) size,
                        strerror(errno));
                exit(77);
        }
        return fd;
}

/* Pages of the file in the page cache: the scan must not have faulted in the data. */
static size_t resident_pages(int fd, uint64_t size) {
        size_t pg = (size_t) sysconf(_SC_PAGESIZE), n = (size_t) ((size + pg - 1) / pg), count = 0;
        unsigned char *vec = malloc(n);
        void *m = mmap(NULL, (size_t) size, PROT_READ, MAP_SHARED, fd, 0);

        TAP_CHECK(vec && m != MAP_FAILED);
        TAP_CHECK(mincore(m, (size_t) size, vec) == 0);
        for (size_t i = 0; i < n; i++)
                count += vec[i] & 1;
        munmap(m, (size_t) size);
        free(vec);
        return count;
}

static void sparse_check(const struct buf *head, enum mg_format fmt) {
        int fd = sparse_file(head, SPARSE_SIZE);
        struct scan_report *r = malloc(sizeof(*r));

        TAP_CHECK(r);
        report_init(r);
        TAP_CHECK(scan_fd(fd, r) == 0);
        TAP_CHECK(r->format == fmt);
        TAP_CHECK(r->size == SPARSE_SIZE);
        CHECK_CLEAN(r);
        /* Header pages only (a few, with read-ahead), never 20 GB of data. */
        size_t pages = resident_pages(fd, SPARSE_SIZE);
        if (pages > 4096) {
                fprintf(stderr, "# %zu pages resident after the scan\n", pages);
                TAP_CHECK(0);
        }
        close(fd);
        free(r);
}

static void test_safetensors_sparse_20gb_is_decided_from_the_header(void) {
        char header[256];
        uint64_t data = SPARSE_SIZE;
        struct buf b;

        /* header length is fixed once the numbers are: compute the data size after it. */
        for (int i = 0; i < 2; i++) {
                snprintf(header, sizeof(header),
                         "{\"__metadata__\":{\"license\":\"mit\"},\"w\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]}}",
                         (unsigned long long) data, (unsigned long long) data);
                data = SPARSE_SIZE - 8 - strlen(header);
        }
        b = st_build(header, 0);
        TAP_CHECK(b.len + data == SPARSE_SIZE);
        sparse_check(&b, FMT_SAFETENSORS);
        free(b.p);
}

static void test_gguf_sparse_20gb_is_decided_from_the_header(void) {
        struct buf b = { 0 };
        uint64_t dims[] = { 1 << 16, 0 };

        g_header(&b, 3, 1, 1);
        g_key(&b, "general.license", G_STR), g_str(&b, "mit");
        g_align(&b, 1);
        /* One I8 tensor filling the file from the aligned data start to the end. */
        size_t info = b.len + 8 + 1 + 4 + 16 + 4 + 8;
        size_t start = (info + 31) / 32 * 32;
        dims[1] = (SPARSE_SIZE - start) / dims[0];
        g_tensor(&b, "w", 2, dims, 24, 0);
        TAP_CHECK(b.len == info);
        g_align(&b, 32);
        sparse_check(&b, FMT_GGUF);
        free(b.p);
}

/* ---- Git LFS pointers ---- */

static const char oid[] = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

static bool lfs(const char *text, char ret_oid[65], uint64_t *ret_size) {
        return lfs_pointer_parse((const uint8_t *) text, strlen(text), ret_oid, ret_size);
}

static void test_lfs_pointer_forms(void) {
        char o[65], text[1200];
        uint64_t size = 0;

        snprintf(text, sizeof(text), "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 12345\n", oid);
        TAP_CHECK(lfs(text, o, &size) && size == 12345);
        TAP_CHECK_STR(o, oid);
        snprintf(text, sizeof(text), "version https://git-lfs.github.com/spec/v1\r\noid sha256:%s\r\nsize 0\r\n", oid);
        TAP_CHECK(lfs(text, o, &size) && size == 0);
        snprintf(text, sizeof(text), "\n  version https://hawser.github.com/spec/v1\noid sha256:%s\nsize 9223372036854775807", oid);
        TAP_CHECK(lfs(text, o, &size) && size == INT64_MAX);
        snprintf(text, sizeof(text), "version http://git-media.io/v/2\next-0-foo sha256:%s\next-1-bar x\noid sha256:%s\nsize 1\n",
                 oid, oid);
        TAP_CHECK(lfs(text, o, &size));
        snprintf(text, sizeof(text), "version https://git-lfs.github.com/spec/v1\n\noid sha256:%s\n\nsize 1\n\n", oid);
        TAP_CHECK(lfs(text, o, &size));
        /* Upper-case hex is read and reported in lower case. */
        snprintf(text, sizeof(text), "version https://git-lfs.github.com/spec/v1\noid sha256:4D7A214614AB2935C943F9E0FF69D22EADBB8F32B1258DAAA5E2CA24D17E2393\nsize 1\n");
        TAP_CHECK(lfs(text, o, &size));
        TAP_CHECK_STR(o, oid);
}

static void test_lfs_not_pointers(void) {
        static const char *const bad[] = {
                "version https://git-lfs.github.com/spec/v2\noid sha256:%s\nsize 1\n",
                "version https://git-lfs.github.com/spec/v1\noid sha1:%s\nsize 1\n",
                "version https://git-lfs.github.com/spec/v1\noid sha256:%s0\nsize 1\n",
                "version https://git-lfs.github.com/spec/v1\nsize 1\noid sha256:%s\n",
                "version https://git-lfs.github.com/spec/v1\noid sha256:%s\n",
                "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize -1\n",
                "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 9223372036854775808\n",
                "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 1x\n",
                "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 1\nextra line\n",
                "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize\n",
                "version https://git-lfs.github.com/spec/v1\next-x-y z\noid sha256:%s\nsize 1\n",
                "oid sha256:%s\nversion https://git-lfs.github.com/spec/v1\nsize 1\n",
                "Version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 1\n",
        };
        char text[1200], o[65] = "untouched";
        uint64_t size = 42;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                snprintf(text, sizeof(text), bad[i], oid);
#pragma GCC diagnostic pop
                if (lfs(text, o, &size)) {
                        fprintf(stderr, "# parsed: %s\n", text);
                        TAP_CHECK(0);
                }
        }
        snprintf(text, sizeof(text), "version https://git-lfs.github.com/spec/v1\noid sha256:%.63sg\nsize 1\n", oid);
        TAP_CHECK(!lfs(text, o, &size));
        TAP_CHECK_STR(o, "untouched");
        TAP_CHECK(size == 42);
        /* 1024 bytes or more is content, never a pointer. */
        int n = snprintf(text, sizeof(text), "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 1\n", oid);
        memset(text + n, ' ', 1024 - (size_t) n);
        TAP_CHECK(!lfs_pointer_parse((const uint8_t *) text, 1024, o, &size));
        TAP_CHECK(lfs_pointer_parse((const uint8_t *) text, 1023, o, &size));
        TAP_CHECK(!lfs_sniff((const uint8_t *) text, 1024));
}

static void test_lfs_scan_reports_oid_and_size_or_damage(void) {
        char text[512];
        struct scan_report *r;

        snprintf(text, sizeof(text), "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 548105171\n", oid);
        r = scan(text, strlen(text));
        TAP_CHECK(r->format == FMT_LFS_POINTER);
        CHECK_FINDING(r, RULE_LFS_POINTER, "oid sha256:4d7a2146");
        CHECK_FINDING(r, RULE_LFS_POINTER, "size 548105171");
        TAP_CHECK(r->findings[0].severity == SEV_CRITICAL);
        free(r);
        snprintf(text, sizeof(text), "version https://git-lfs.github.com/spec/v1\noid sha256:%.20s", oid);
        r = scan(text, strlen(text));
        TAP_CHECK(r->format == FMT_LFS_POINTER);
        CHECK_FINDING(r, RULE_LFS_POINTER, "damaged Git LFS pointer");
        free(r);
        r = scan("version 2.0 of the README\n", 26);
        TAP_CHECK(r->format == FMT_TEXT);
        CHECK_CLEAN(r);
        free(r);
}

/* ---- chat templates ---- */

static int template_worst(const char *text, char *first_msg, size_t first_sz) {
        struct scan_report *r = malloc(sizeof(*r));
        struct scan_ctx ctx = { .report = r };
        int worst;

        TAP_CHECK(r);
        report_init(r);
        bool any = template_check(&ctx, "t", (const uint8_t *) text, strlen(text));
        worst = report_worst_severity(r);
        TAP_CHECK(any == (worst >= 0));
        if (first_msg)
                snprintf(first_msg, first_sz, "%s", r->n_findings ? r->findings[0].message : "");
        for (uint32_t i = 0; i < r->n_findings; i++)
                TAP_CHECK(r->findings[i].rule == RULE_TEMPLATE_INJECTION);
        free(r);
        return worst;
}

static void test_template_hostile_forms_are_found(void) {
        static const struct {
                const char *text;
                int sev;
        } cases[] = {
                { "{{ cycler.__init__.__globals__.os.popen('id').read() }}", SEV_CRITICAL },
                { "{{ ''.__class__.__mro__[1].__subclasses__() }}", SEV_CRITICAL },
                { "{% set x = dict(__builtins__=1) %}", SEV_CRITICAL },
                { "{{ x['__class__'] }}", SEV_CRITICAL },
                { "{{ x[\"__globals__\"] }}", SEV_CRITICAL },
                { "{{ x|attr('__class__') }}", SEV_CRITICAL },
                { "{{ x|attr('\\x5f\\x5fclass\\x5f\\x5f') }}", SEV_CRITICAL },
                { "{{ x['\\u005f\\u005fclass\\u005f\\u005f'] }}", SEV_CRITICAL },
                { "{{ x['\\U0000005f\\U0000005fclass\\U0000005f\\U0000005f'] }}", SEV_CRITICAL },
                { "{{ x['\\137\\137class\\137\\137'] }}", SEV_CRITICAL },
                { "{{ x['\\x5fx'] }}", SEV_CRITICAL },
                { "{{ x['\\N{LOW LINE}\\N{low line}class__'] }}", SEV_CRITICAL },
                { "{{ x['\\N{DIGIT ONE}'] }}", SEV_CRITICAL },
                { "{{ x['_' '_class' '_' \"_\"] }}", SEV_CRITICAL },
                { "{{ x|attr(y) }}", SEV_CRITICAL },
                { "{{ x|attr('a' ~ 'b') }}", SEV_CRITICAL },
                { "{{ x|attr('_private') }}", SEV_CRITICAL },
                { "{{ x._private }}", SEV_CRITICAL },
                { "{{ xs|map(attribute=name)|list }}", SEV_CRITICAL },
                { "{{ xs|map('attr', name)|list }}", SEV_CRITICAL },
                { "{{ xs|map(f)|list }}", SEV_CRITICAL },
                { "{{ xs|selectattr(k)|list }}", SEV_CRITICAL },
                { "{{ xs|rejectattr(k, 'none')|list }}", SEV_CRITICAL },
                { "{{ xs|groupby(attribute=k) }}", SEV_CRITICAL },
                { "{{ xs|sort(attribute=k) }}", SEV_CRITICAL },
                { "{{ xs|sum(attribute='a._b') }}", SEV_CRITICAL },
                { "{% filter attr(k) %}x{% endfilter %}", SEV_CRITICAL },
                { "{% set k %}__class__{% endset %}{{ x[k] }}", SEV_CRITICAL },
                { "{% macro k() %}__init__{% endmacro %}", SEV_CRITICAL },
                { "{% set u = '_' %}{{ x[u ~ u ~ 'class' ~ u ~ u] }}", SEV_HIGH },
                { "{{ x[('_' * 2) ~ 'class'] }}", SEV_HIGH },
                { "{{ x[['_', '_', 'class']|join] }}", SEV_HIGH },
                { "{{ x['_'.join(['', 'class'])] }}", SEV_HIGH },
                { "{{ x[('%c%c' % (95, 95)) ~ 'class'] }}", SEV_HIGH },
                { "{{ x['XXclass'|replace('X', '_')] }}", SEV_HIGH },
                { "{% set k = a ~ b %}{{ x[k] }}", SEV_HIGH },
                { "{% set k = a|join %}{{ x[k] }}", SEV_HIGH },
                { "{% for k in [a ~ b] %}{{ x[k] }}{% endfor %}", SEV_HIGH },
                { "{{ x[bos_token] }}", SEV_HIGH },
                { "{% set k = eos_token %}{{ x[k] }}", SEV_HIGH },
                { "{{ x[caller()] }}", SEV_HIGH },
                { "{{ (()|select|string)[24] }}", SEV_HIGH },
                { "{{ ({}|items|string) }}", SEV_HIGH },
                { "{{ (cycler)|string }}", SEV_HIGH },
                { "{{ (x|map('attr', 'a'))|pprint }}", SEV_HIGH },
                { "{{ lipsum|string|list }}", SEV_HIGH },
                { "{{ dict(_=1)|first }}", SEV_HIGH },
                { "{{ lipsum }}{{ cycler.next }}", SEV_HIGH },
                { "{{ config.items() }}", SEV_HIGH },
                { "{{ request['args'] }}", SEV_HIGH },
                { "{{ (a ~ b).format(x) }}", SEV_HIGH },
                { "{% set f = '%c' %}", SEV_HIGH },
                { "{{ x }}{{ '}}' ~ y.__class__ }}", SEV_CRITICAL },
                { "{{ {'a': {'b': 1}} }}{{ y.__class__ }}", SEV_CRITICAL },
                { "{%- if x -%}{{- y.__dict__ -}}{%- endif +%}", SEV_CRITICAL },
                { "{{ x\n\n.\n__class__ }}", SEV_CRITICAL },
                { "{{ x.__class__ ", SEV_CRITICAL },            /* unterminated: still reported */
                { "{{ x['a' ~ y.__class__", SEV_CRITICAL },
        };
        char msg[REPORT_MESSAGE_MAX];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int w = template_worst(cases[i].text, msg, sizeof(msg));
                if (w != cases[i].sev) {
                        fprintf(stderr, "# %s: worst %d, expected %d (%s)\n", cases[i].text, w, cases[i].sev, msg);
                        TAP_CHECK(0);
                }
        }
        /* Line numbers point at the construct. */
        template_worst("line one\n{% if x %}\n\n{{ y.__class__ }}{% endif %}", msg, sizeof(msg));
        TAP_CHECK(strstr(msg, "t, line 4: names a Python internal: __class__"));
        template_worst("{{ x['\\x5f\\x5fclass\\x5f\\x5f'] }}", msg, sizeof(msg));
        TAP_CHECK(strstr(msg, "'__class__'"));
}

static void test_template_benign_constructs_pass(void) {
        static const char *const cases[] = {
                /* Text between blocks is data; so are raw blocks and comments. */
                "Talk about __init__ and __class__ freely. {{ messages[0]['content'] }}",
                "{% raw %}{{ cycler.__init__.__globals__ }}{% endraw %}",
                "{%- raw -%} {{ x.__class__ }} {%- endraw -%}",
                "{# {{ x.__class__ }} #}{{ y }}",
                "{{ '{{ not a block }}' }}",
                "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}",
                "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}",
                "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}",
                "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}{%- set ns.last_query_index = index %}{{ messages[ns.last_query_index].content }}",
                "{% set ns = namespace(system_prompt='') %}{% set ns.system_prompt = ns.system_prompt + '\\n\\n' + message['content'] %}{{ messages[ns.index] }}",
                "{%- set date_string = strftime_now(\"%d %b %Y\") %}{{ 'Today Date: ' + date_string }}",
                "{{- tool_call.arguments | tojson }}{{ t | tojson(indent=4) }}",
                "{% for arg_name, arg_val in tool_call.arguments | items %}{{ arg_name + '=\"' + arg_val + '\"' }}{% endfor %}",
                "{% for key, val in tool.items() if key != 'return' %}{{ tool[key] }}{{ param_fields[key] }}{% endfor %}",
                "{% for k in obj|list %}{{ obj[k] }}{% endfor %}",
                "{{ builtin_tools | reject('equalto', 'code_interpreter') | join(', ') }}",
                "{% set user_messages = loop_messages | selectattr('role', 'equalto', 'user') | list %}",
                "{{ messages|map(attribute='content')|join }}{{ xs|sort(attribute='name') }}{{ xs|groupby('role') }}",
                "{{ messages[loop.index0 - 1].role }}{{ messages[loop.index0 + 1] }}{{ messages[1:] }}{{ x[-1] }}{{ messages[::-1] }}",
                "{% set content = content.split('</think>')[-1].lstrip('\\n') %}{{ content }}",
                "{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}",
                "{{ x.name }}{{ x.name_ }}",
                "{{ '_' }}{% if name == '_' %}{% endif %}{% if '_' in name %}{% endif %}",
                "{{ 'a_b' ~ 'c_d' }}{{ x.snake_case_name }}",
                "{{ x.attr }}{{ loop.cycle('odd', 'even') }}{% set ns = namespace() %}{% set ns.found = true %}",
                "{{ '%d items'|format(n) }}{{ x|string }}{{ loop.index|string }}",
                "{{ (messages|selectattr('role', 'equalto', 'system')|list|length)|string }}{{ xs|map('upper')|join|string }}",
                "{% if x %}{% elif [a ~ b]|length %}{% endif %}",
                "{% macro render(m) %}{{ m.content }}{% endmacro %}{{ render(messages[0]) }}",
                "{{ x|attr('content') }}{{ x|attr('a.b') }}",
                "",
                "{",
                "{{",
                "{%",
                "}}%}#}",
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char msg[REPORT_MESSAGE_MAX];
                if (template_worst(cases[i], msg, sizeof(msg)) >= 0) {
                        fprintf(stderr, "# false positive on: %s\n# %s\n", cases[i], msg);
                        TAP_CHECK(0);
                }
        }
}

static void test_template_limits_fail_closed(void) {
        size_t n = 2 * (TEMPLATE_TEST_DEPTH) + 8;
        char *t = malloc(n + 1);

        TAP_CHECK(t);
        /* Brackets nested beyond the limit. */
        size_t k = 0;
        t[k++] = '{', t[k++] = '{';
        for (int i = 0; i < TEMPLATE_TEST_DEPTH; i++)
                t[k++] = '(';
        t[k++] = 'x';
        t[k] = '\0';
        TAP_CHECK(template_worst(t, NULL, 0) == SEV_HIGH);
        free(t);

        /* Over a million tokens in one block. */
        n = 2u * (1u << 20) + 16;
        t = malloc(n + 8);
        TAP_CHECK(t);
        memcpy(t, "{{ ", 3);
        k = 3;
        while (k < n)
                t[k++] = 'a', t[k++] = ' ';
        memcpy(t + k, "}}", 3);
        TAP_CHECK(template_worst(t, NULL, 0) == SEV_HIGH);
        free(t);

        /* Many findings: at most a handful listed, the most severe kept. */
        struct scan_report *r = malloc(sizeof(*r));
        struct scan_ctx ctx = { .report = r };
        struct buf b = { 0 };
        report_init(r);
        for (int i = 0; i < 40; i++) {
                char s[64];
                snprintf(s, sizeof(s), "{{ x[a%d ~ b] }}", i);
                b_str(&b, s);
        }
        b_str(&b, "{{ x.__class__ }}");
        TAP_CHECK(template_check(&ctx, "t", b.p, b.len));
        TAP_CHECK(r->n_findings <= 10);
        TAP_CHECK(report_worst_severity(r) == SEV_CRITICAL);
        CHECK_FINDING(r, RULE_TEMPLATE_INJECTION, "more template findings not listed");
        free(b.p);
        free(r);
}

static void test_template_truncated_at_every_byte_never_crashes(void) {
        static const char t[] =
                "{% set u = '_' %}{# c #}{%- raw %}{{ x }}{% endraw -%}{{ x['\\x5f' ~ \"a\\\"b\" ~ '\\N{LOW LINE}'] }}"
                "{% for k in [a ~ b] if k %}{{ (()|select|string)[24] }}{{ y|map('attr', k)|list }}{% endfor %}"
                "{% set k %}__x{% endset %}{% macro m(_a=1) %}{{ caller() }}{% endmacro %}{{ x|attr(k)|string }}";

        for (size_t k = 0; k <= sizeof(t) - 1; k++) {
                char *copy = malloc(k ? k : 1);   /* exact size: a read past the end shows under ASan */
                TAP_CHECK(copy);
                memcpy(copy, t, k);
                struct scan_report *r = malloc(sizeof(*r));
                struct scan_ctx ctx = { .report = r };
                report_init(r);
                (void) template_check(&ctx, "t", (const uint8_t *) copy, k);
                free(r);
                free(copy);
        }
}

/* Source code with "{{" or "{%s" in its strings is not a template Jinja2 would
 * compile, so it is not checked as one; templates, hostile ones included, are. */
static void test_template_compiles_tells_templates_from_source(void) {
        static const char *const not_templates[] = {
                "x = f\"{{}}\"\n",                                             /* empty expression */
                "print('{%s}' % name)\n",                                       /* unknown tag 's' */
                "s = '{%(name)s}'\n",                                            /* no tag name */
                "(function() {{\n  var img_id = \"_anim_img{id}\";\n}})\n",       /* two names in a row */
                "f\"{{{', '.join(self._inline_attrs(v))}}}\"\n",                   /* {x} is not a dict */
                "f\"{{x = 1}}\"\n",                                              /* '=' outside a call */
                "a {{ b @ c }}\n",                                               /* no token for '@' */
                "a {{ (b] }}\n",                                                 /* wrong bracket */
                "a {{ b\n",                                                      /* unterminated */
                "a {# comment\n",                                                /* unterminated comment */
        };
        static const char *const templates[] = {
                "{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}{% endfor %}",
                "{{ bos_token }}{% if x is defined and not y %}{{ x|tojson }}{% else %}{{ {'a': 1}|length }}{% endif %}",
                "{% set ns = namespace(found=false) %}{{ raise_exception('no') if ns.found }}",
                "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
                "{{ ''.__class__.__mro__[1].__subclasses__() }}",
                "{% generation %}{{ m }}{% endgeneration %}{% for x in y %}{% break %}{% endfor %}",
                "{{ 3 is divisibleby 3 }}{{ x is not sameas none }}{{ x is a.b 'c' }}",   /* a test's argument */
                "{% print x %}",
        };
        for (size_t i = 0; i < sizeof(not_templates) / sizeof(*not_templates); i++)
                if (template_compiles((const uint8_t *) not_templates[i], strlen(not_templates[i]))) {
                        fprintf(stderr, "# taken for a template: %s", not_templates[i]);
                        exit(1);
                }
        for (size_t i = 0; i < sizeof(templates) / sizeof(*templates); i++)
                if (!template_compiles((const uint8_t *) templates[i], strlen(templates[i]))) {
                        fprintf(stderr, "# not taken for a template: %s\n", templates[i]);
                        exit(1);
                }
}

static void test_template_sniff(void) {
        TAP_CHECK(template_sniff((const uint8_t *) "a {{ b }}", 9));
        TAP_CHECK(template_sniff((const uint8_t *) "{%", 2));
        TAP_CHECK(template_sniff((const uint8_t *) "x{#", 3));
        TAP_CHECK(!template_sniff((const uint8_t *) "{ \"a\": {} }", 11));
        TAP_CHECK(!template_sniff((const uint8_t *) "{", 1));
        TAP_CHECK(!template_sniff((const uint8_t *) "", 0));
        TAP_CHECK(!template_sniff((const uint8_t *) "a { {", 5));
}

static void test_template_tokenizer_config(void) {
        static const struct {
                const char *json;
                const char *where;   /* NULL: no finding */
        } cases[] = {
                { "{\"chat_template\": \"{{ x.__class__ }}\"}", "chat_template, line 1" },
                { "{\"chat_template\": [{\"name\": \"default\", \"template\": \"{{ x }}\"},"
                  "{\"name\": \"tool_use\", \"template\": \"{{ x['__globals__'] }}\"}]}", "chat_template.tool_use" },
                { "{\"chat_template\": \"{{ x.__class__ }}\", \"chat_template\": \"{{ x }}\"}", "chat_template" },
                { "{\"chat_template\": [{\"template\": \"{{ x.__class__ }}\"}]}", "chat_template, line" },
                { "{\"chat_template\": \"{{ x }}\", \"other\": \"{{ x.__class__ }}\"}", NULL },
                { "{\"chat_template\": 3}", NULL },
                { "[\"{{ x.__class__ }}\"]", NULL },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct json_doc *doc;
                char err[128];
                struct scan_report *r = malloc(sizeof(*r));
                struct scan_ctx ctx = { .report = r };

                TAP_CHECK(r);
                report_init(r);
                TAP_CHECK(json_parse((const uint8_t *) cases[i].json, strlen(cases[i].json), JSON_PYTHON, 0, &doc,
                                     err, sizeof(err)) == 0);
                template_check_tokenizer_config(&ctx, json_root(doc));
                if (cases[i].where)
                        CHECK_FINDING(r, RULE_TEMPLATE_INJECTION, cases[i].where);
                else
                        CHECK_CLEAN(r);
                json_free(doc);
                free(r);
        }
        template_check_tokenizer_config(NULL, NULL);
}

int main(void) {
        static const struct tap_case cases[] = {
                { "safetensors: a valid file is clean and reports its license", test_safetensors_valid_is_clean_and_reports_license },
                { "safetensors: truncated at every byte is malformed or not sniffed", test_safetensors_truncated_at_every_byte_is_malformed },
                { "safetensors: sniffing claims only what looks like safetensors", test_safetensors_sniff_is_strict },
                { "safetensors: header length past the file and over 100 MB", test_safetensors_header_length_limits },
                { "safetensors: every malformation names its reason", test_safetensors_every_malformation_names_its_reason },
                { "safetensors: invalid UTF-8 in the header is malformed", test_safetensors_invalid_utf8_is_malformed },
                { "safetensors: sizes near 64-bit overflow", test_safetensors_sizes_near_overflow },
                { "safetensors: license keys in __metadata__", test_safetensors_license_keys },
                { "safetensors: a sparse 20 GB file is decided from its header", test_safetensors_sparse_20gb_is_decided_from_the_header },
                { "gguf: a valid v3 file is clean in both byte orders", test_gguf_valid_is_clean_both_byte_orders },
                { "gguf: truncated at every byte is malformed or not sniffed", test_gguf_truncated_at_every_byte_is_malformed },
                { "gguf: sniffing and versions", test_gguf_sniff_and_versions },
                { "gguf: huge counts fail fast without allocation", test_gguf_huge_counts_fail_fast },
                { "gguf: arrays nest at most 8 deep", test_gguf_array_nesting_limit },
                { "gguf: every malformation names its reason", test_gguf_every_malformation_names_its_reason },
                { "gguf: chat templates and named templates are checked", test_gguf_chat_templates_are_checked },
                { "gguf: a sparse 20 GB file is decided from its header", test_gguf_sparse_20gb_is_decided_from_the_header },
                { "lfs: pointer forms git-lfs reads", test_lfs_pointer_forms },
                { "lfs: what is not a pointer", test_lfs_not_pointers },
                { "lfs: the scan reports oid and size, or the damage", test_lfs_scan_reports_oid_and_size_or_damage },
                { "template: hostile forms are found with their severity", test_template_hostile_forms_are_found },
                { "template: constructs of real chat templates pass", test_template_benign_constructs_pass },
                { "template: only text Jinja2 would compile is checked as a template", test_template_compiles_tells_templates_from_source },
                { "template: limits fail closed and findings are capped", test_template_limits_fail_closed },
                { "template: truncated at every byte never crashes", test_template_truncated_at_every_byte_never_crashes },
                { "template: sniffing", test_template_sniff },
                { "template: tokenizer_config.json chat_template forms", test_template_tokenizer_config },
        };
        return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
