/* test-onnx.c — unit tests for the protobuf wire reader and the ONNX walk: varint
 * limits, wire-type errors, every external_data spelling, truncation at every
 * byte, the nesting limit, sniffing. Models are built here field by field, so
 * each malformation is visible in the test that checks it; no fixture files. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.h"
#include "report.h"
#include "scan.h"
#include "tap.h"

/* ---- byte buffers and protobuf encoding ---- */

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

static void b_varint(struct buf *b, uint64_t v) {
        while (v > 0x7f) {
                uint8_t x = (uint8_t) (v & 0x7f) | 0x80;
                b_put(b, &x, 1);
                v >>= 7;
        }
        uint8_t x = (uint8_t) v;
        b_put(b, &x, 1);
}

static void b_tag(struct buf *b, uint32_t number, unsigned wire) {
        b_varint(b, (uint64_t) number << 3 | wire);
}

static void f_varint(struct buf *b, uint32_t number, uint64_t v) {
        b_tag(b, number, PB_WIRE_VARINT);
        b_varint(b, v);
}

static void f_bytes(struct buf *b, uint32_t number, const void *d, size_t n) {
        b_tag(b, number, PB_WIRE_LEN);
        b_varint(b, n);
        b_put(b, d, n);
}

static void f_str(struct buf *b, uint32_t number, const char *s) {
        f_bytes(b, number, s, strlen(s));
}

/* Appends sub as a length-delimited field and frees it. */
static void f_msg(struct buf *b, uint32_t number, struct buf *sub) {
        f_bytes(b, number, sub->p, sub->len);
        free(sub->p);
        memset(sub, 0, sizeof(*sub));
}

static void f_entry(struct buf *b, uint32_t number, const char *key, const void *value, size_t vlen) {
        struct buf e = { 0 };
        f_str(&e, 1, key);
        f_bytes(&e, 2, value, vlen);
        f_msg(b, number, &e);
}

/* A TensorProto: name, float, and (when location is not NULL) external data. */
static void tensor(struct buf *t, const char *name, const char *location, size_t loc_len) {
        f_varint(t, 1, 16);      /* dims */
        f_varint(t, 2, 1);       /* FLOAT */
        f_str(t, 8, name);
        if (location) {
                f_entry(t, 13, "location", location, loc_len);
                f_entry(t, 13, "offset", "0", 1);
        }
        f_varint(t, 14, 1);      /* EXTERNAL */
}

static void node(struct buf *n, const char *op, const char *domain) {
        f_str(n, 1, "x");
        f_str(n, 2, "y");
        f_str(n, 3, "n0");
        f_str(n, 4, op);
        if (domain)
                f_str(n, 7, domain);
}

/* ModelProto { ir_version 8, opset, graph { node, initializer } }. */
static struct buf model_with(const char *location, size_t loc_len) {
        struct buf m = { 0 }, g = { 0 }, n = { 0 }, t = { 0 }, o = { 0 };

        f_varint(&m, 1, 8);
        f_str(&m, 2, "test");
        f_str(&o, 1, "");
        f_varint(&o, 2, 13);
        f_msg(&m, 8, &o);
        node(&n, "Relu", NULL);
        f_msg(&g, 1, &n);
        f_str(&g, 2, "main");
        tensor(&t, "w", location, loc_len);
        f_msg(&g, 5, &t);
        f_msg(&m, 7, &g);
        return m;
}

static struct buf model(const char *location) {
        return model_with(location, strlen(location));
}

/* ---- report helpers ---- */

static void dump(const struct scan_report *r) {
        for (size_t i = 0; i < r->n_findings; i++)
                fprintf(stderr, "#   %s %s [%s] %s\n", severity_name_upper(r->findings[i].severity),
                        rule_name(r->findings[i].rule), r->findings[i].member, r->findings[i].message);
}

static size_t count_findings(const struct scan_report *r, enum mg_rule rule, const char *text) {
        size_t n = 0;
        for (size_t i = 0; i < r->n_findings; i++)
                if (r->findings[i].rule == rule && (!text || strstr(r->findings[i].message, text)))
                        n++;
        return n;
}

#define CHECK_FINDING(r, rule, text) do {                                         \
        if (count_findings((r), (rule), (text)) == 0) {                           \
                fprintf(stderr, "# expected %s \"%s\"; report:\n", rule_name(rule), \
                        (text) ? (text) : "*");                                   \
                dump(r);                                                          \
        }                                                                         \
        TAP_CHECK(count_findings((r), (rule), (text)) > 0);                       \
} while (0)

#define CHECK_NO_FINDINGS(r) do {                                                 \
        if ((r)->n_findings != 0)                                                 \
                dump(r);                                                          \
        TAP_CHECK((r)->n_findings == 0);                                          \
} while (0)

/* Scans a private copy of exactly len bytes, so that ASan sees any overread. */
static struct scan_report *scan(const void *d, size_t len) {
        struct scan_report *r = calloc(1, sizeof(*r));
        uint8_t *copy = malloc(len ? len : 1);
        TAP_CHECK(r && copy);
        if (len)
                memcpy(copy, d, len);
        report_init(r);
        scan_buffer(r, copy, len);
        free(copy);
        return r;
}

static struct scan_report *scan_buf(const struct buf *b) {
        return scan(b->p, b->len);
}

static bool sniff(const void *d, size_t len) {
        uint8_t *copy = malloc(len ? len : 1);
        TAP_CHECK(copy);
        if (len)
                memcpy(copy, d, len);
        bool r = onnx_sniff(copy, len);
        free(copy);
        return r;
}

/* ---- varints ---- */

static int varint_of(const char *bytes, size_t n, uint64_t *v, size_t *pos) {
        struct cursor c = cursor_make(bytes, n);
        int r = pb_varint(&c, v);
        *pos = c.pos;
        return r;
}

static void test_varint_one_and_two_bytes(void) {
        uint64_t v;
        size_t pos;
        TAP_CHECK(varint_of("\x00", 1, &v, &pos) == 0 && v == 0 && pos == 1);
        TAP_CHECK(varint_of("\x7f", 1, &v, &pos) == 0 && v == 127 && pos == 1);
        TAP_CHECK(varint_of("\xac\x02", 2, &v, &pos) == 0 && v == 300 && pos == 2);
        /* Non-minimal encodings are valid protobuf. */
        TAP_CHECK(varint_of("\x81\x80\x00", 3, &v, &pos) == 0 && v == 1 && pos == 3);
}

static void test_varint_ten_bytes_is_the_maximum(void) {
        uint64_t v;
        size_t pos;
        TAP_CHECK(varint_of("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10, &v, &pos) == 0);
        TAP_CHECK(v == UINT64_MAX && pos == 10);
        TAP_CHECK(varint_of("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 10, &v, &pos) == 0);
        TAP_CHECK(v == (uint64_t) 1 << 63);
}

static void test_varint_overflow_and_too_long_are_errors(void) {
        uint64_t v = 42;
        size_t pos;
        /* A 10th byte with bits beyond 64. */
        TAP_CHECK(varint_of("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10, &v, &pos) == -EOVERFLOW);
        TAP_CHECK(pos == 0 && v == 42);
        TAP_CHECK(varint_of("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f", 10, &v, &pos) == -EOVERFLOW);
        /* An 11th byte. */
        TAP_CHECK(varint_of("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x01", 11, &v, &pos) == -E2BIG);
        TAP_CHECK(varint_of("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 11, &v, &pos) == -E2BIG);
        TAP_CHECK(pos == 0);
}

static void test_varint_cut_by_the_end(void) {
        uint64_t v;
        size_t pos;
        TAP_CHECK(varint_of("", 0, &v, &pos) == -ENODATA);
        TAP_CHECK(varint_of("\x80", 1, &v, &pos) == -ENODATA && pos == 0);
        TAP_CHECK(varint_of("\xff\xff\xff", 3, &v, &pos) == -ENODATA && pos == 0);
}

/* ---- fields ---- */

static enum pb_status next_of(const char *bytes, size_t n, struct pb_field *f, size_t *pos) {
        struct cursor c = cursor_make(bytes, n);
        enum pb_status st = pb_next(&c, f);
        *pos = c.pos;
        return st;
}

static void test_field_each_wire_type(void) {
        struct pb_field f;
        size_t pos;

        TAP_CHECK(next_of("", 0, &f, &pos) == PB_END);
        TAP_CHECK(next_of("\x08\x96\x01", 3, &f, &pos) == PB_OK);
        TAP_CHECK(f.number == 1 && f.wire == PB_WIRE_VARINT && f.value == 150 && pos == 3);
        TAP_CHECK(next_of("\x11\x01\x02\x03\x04\x05\x06\x07\x08", 9, &f, &pos) == PB_OK);
        TAP_CHECK(f.number == 2 && f.wire == PB_WIRE_I64 && f.value == 0x0807060504030201ull && pos == 9);
        TAP_CHECK(next_of("\x1a\x03" "abc", 5, &f, &pos) == PB_OK);
        TAP_CHECK(f.number == 3 && f.wire == PB_WIRE_LEN && f.len == 3 && memcmp(f.data, "abc", 3) == 0 && pos == 5);
        TAP_CHECK(next_of("\x25\x01\x00\x00\x80", 5, &f, &pos) == PB_OK);
        TAP_CHECK(f.number == 4 && f.wire == PB_WIRE_I32 && f.value == 0x80000001u && pos == 5);
        /* Field 2^29-1, the largest: tag 0xfffffff8 | 0. */
        TAP_CHECK(next_of("\xf8\xff\xff\xff\x0f\x00", 6, &f, &pos) == PB_OK);
        TAP_CHECK(f.number == 0x1fffffff);
}

static void test_field_errors(void) {
        struct pb_field f;
        size_t pos;

        TAP_CHECK(next_of("\x1b", 1, &f, &pos) == PB_ERR_GROUP && f.number == 3 && pos == 0);
        TAP_CHECK(next_of("\x1c", 1, &f, &pos) == PB_ERR_GROUP && f.wire == PB_WIRE_EGROUP);
        TAP_CHECK(next_of("\x0e", 1, &f, &pos) == PB_ERR_WIRE_TYPE && f.wire == 6);
        TAP_CHECK(next_of("\x0f", 1, &f, &pos) == PB_ERR_WIRE_TYPE && f.wire == 7);
        TAP_CHECK(next_of("\x00", 1, &f, &pos) == PB_ERR_TAG_RANGE);
        TAP_CHECK(next_of("\x02\x00", 2, &f, &pos) == PB_ERR_TAG_RANGE);
        /* Field number 2^29: tag beyond 32 bits. */
        TAP_CHECK(next_of("\x80\x80\x80\x80\x10\x00", 6, &f, &pos) == PB_ERR_TAG_RANGE);
        TAP_CHECK(next_of("\x3a\x05" "abc", 5, &f, &pos) == PB_ERR_LENGTH);
        TAP_CHECK(f.number == 7 && f.value == 5 && pos == 0);
        TAP_CHECK(next_of("\x3a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11, &f, &pos) == PB_ERR_LENGTH);
        TAP_CHECK(f.value == UINT64_MAX);
        TAP_CHECK(next_of("\x09\x01\x02", 3, &f, &pos) == PB_ERR_FIXED_CUT);
        TAP_CHECK(next_of("\x0d\x01\x02\x03", 4, &f, &pos) == PB_ERR_FIXED_CUT);
        TAP_CHECK(next_of("\x08", 1, &f, &pos) == PB_ERR_VARINT_CUT && f.number == 1);
        TAP_CHECK(next_of("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11, &f, &pos) == PB_ERR_VARINT_OVERFLOW);
        TAP_CHECK(next_of("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11, &f, &pos) == PB_ERR_VARINT_LONG);
        TAP_CHECK(f.number == 0);
}

/* ---- sniffing ---- */

static void test_sniff_accepts_models(void) {
        struct buf m = model("w.bin");
        TAP_CHECK(sniff(m.p, m.len));
        free(m.p);
        m = (struct buf) { 0 };

        /* No ir_version: onnx.load() does not need one. */
        struct buf g = { 0 }, t = { 0 }, n = { 0 };
        node(&n, "Relu", NULL);
        f_msg(&g, 1, &n);
        tensor(&t, "w", "../x", 4);
        f_msg(&g, 5, &t);
        f_msg(&m, 7, &g);
        TAP_CHECK(sniff(m.p, m.len));
        free(m.p);
}

static void test_sniff_accepts_damaged_model_starting_with_ir_version(void) {
        struct buf m = model("w.bin");
        TAP_CHECK(sniff(m.p, m.len - 1));
        TAP_CHECK(sniff(m.p, 5));               /* ir_version and half a tag-length */
        TAP_CHECK(!sniff(m.p, 2));              /* ir_version alone */
        m.p[1] = 99;                            /* ir_version out of range */
        TAP_CHECK(!sniff(m.p, m.len - 1));
        TAP_CHECK(sniff(m.p, m.len));           /* but whole, it is a model */
        free(m.p);
}

static void test_sniff_rejects_other_content(void) {
#define T(s) { s, sizeof(s) - 1 }
        static const struct {
                const char *p;
                size_t n;
        } others[] = {
                T(""), T("hello world\n"), T("{\"a\": 1}\n"), T(": (a(b(c(d(e(f(g(h(i(j(k(l(m(n(o(p\n"),
                T("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94."), T("(dp0\nS'a'\np1\nI1\ns."),
                T("\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"),
                T("GGUF\x03\x00\x00\x00\x00\x00\x00\x00"), T("\x08\x07"), T("PK\x03\x04\x14\x00"),
                T("\x1f\x8b\x08\x00"), T("\x89HDF\r\n\x1a\n\x00\x00\x00\x00"),
        };
#undef T
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
                TAP_CHECK(!sniff(others[i].p, others[i].n));

        /* safetensors: an 8-byte header length and JSON. */
        static const char st[] = "\x40\x00\x00\x00\x00\x00\x00\x00{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}    ";
        TAP_CHECK(!sniff(st, sizeof(st) - 1));

        /* A protobuf that is not a ModelProto: TF SavedModel's schema version 1
         * and a meta graph. */
        struct buf b = { 0 }, sub = { 0 };
        f_varint(&b, 1, 1);
        f_str(&sub, 1, "serve");
        f_msg(&b, 2, &sub);
        TAP_CHECK(!sniff(b.p, b.len));
        free(b.p);

        /* Random bytes. */
        uint32_t x = 12345;
        uint8_t rnd[4096];
        for (int round = 0; round < 2000; round++) {
                size_t n = 1 + (size_t) (x % sizeof(rnd));
                for (size_t i = 0; i < n; i++) {
                        x = x * 1103515245u + 12345u;
                        rnd[i] = (uint8_t) (x >> 16);
                }
                TAP_CHECK(!sniff(rnd, n));
        }
}

/* ---- the walk: external data ---- */

static void check_location(const char *loc, size_t len, bool hostile, const char *why) {
        struct buf m = model_with(loc, len);
        struct scan_report *r = scan_buf(&m);
        TAP_CHECK(r->format == FMT_ONNX);
        if (hostile) {
                CHECK_FINDING(r, RULE_ONNX_EXTERNAL_DATA, why);
                TAP_CHECK(r->findings[0].severity == SEV_CRITICAL);
                CHECK_FINDING(r, RULE_ONNX_EXTERNAL_DATA, "initializer 'w' in graph 'main'");
        } else
                CHECK_NO_FINDINGS(r);
        free(m.p);
        free(r);
}

#define LOC(s, hostile, why) check_location((s), sizeof(s) - 1, (hostile), (why))

static void test_external_locations_inside_are_fine(void) {
        LOC("w.bin", false, NULL);
        LOC("data/w.bin", false, NULL);
        LOC("./w.bin", false, NULL);
        LOC("..w.bin", false, NULL);
        LOC("w..bin", false, NULL);
        LOC("a/...", false, NULL);
}

static void test_external_locations_outside_are_critical(void) {
        LOC("/etc/hostname", true, "is an absolute path");
        LOC("//server/share", true, "is an absolute path");
        LOC("\\\\server\\share\\x", true, "is an absolute path");
        LOC("\\x", true, "is an absolute path");
        LOC("C:\\x", true, "Windows drive path");
        LOC("c:x", true, "Windows drive path");
        LOC("..", true, "'..' component");
        LOC("../x", true, "'..' component");
        LOC("a/../../x", true, "'..' component");
        LOC("a/..", true, "'..' component");
        LOC("a\\..\\..\\x", true, "'..' component");
        LOC("a//../x", true, "'..' component");
        LOC("", true, "is empty");
        LOC("w.bin\0/../../x", true, "NUL byte");
}

static void test_external_without_location_is_malformed(void) {
        struct buf m = model_with(NULL, 0);
        struct scan_report *r = scan_buf(&m);
        CHECK_FINDING(r, RULE_MALFORMED, "data_location is EXTERNAL but external_data has no location");
        free(m.p);
        free(r);
}

static void test_external_data_location_truncated_to_int32(void) {
        /* data_location 1 + 2^32: parsers keep the low 32 bits, EXTERNAL. */
        struct buf m = { 0 }, g = { 0 }, t = { 0 };
        f_str(&t, 8, "w");
        f_varint(&t, 14, 1 + ((uint64_t) 1 << 32));
        f_msg(&g, 5, &t);
        f_varint(&m, 1, 8);
        f_msg(&m, 7, &g);
        struct scan_report *r = scan_buf(&m);
        CHECK_FINDING(r, RULE_MALFORMED, "EXTERNAL but external_data has no location");
        free(m.p);
        free(r);
}

static void test_external_location_checked_without_data_location(void) {
        /* A second copy of a singular field merges into the first: judge every
         * location, whatever data_location says. */
        struct buf m = { 0 }, g = { 0 }, t = { 0 };
        f_str(&t, 8, "w");
        f_entry(&t, 13, "location", "/etc/passwd", 11);
        f_msg(&g, 5, &t);
        f_varint(&m, 1, 8);
        f_msg(&m, 7, &g);
        struct scan_report *r = scan_buf(&m);
        CHECK_FINDING(r, RULE_ONNX_EXTERNAL_DATA, "absolute");
        free(m.p);
        free(r);
}

/* A graph holding one hostile tensor in the given place. */
static struct buf model_hiding(int where) {
        struct buf m = { 0 }, g = { 0 }, n = { 0 }, a = { 0 }, sub = { 0 }, t = { 0 }, s = { 0 }, fn = { 0 };

        f_varint(&m, 1, 8);
        tensor(&t, "hidden", "../../secret", 12);
        switch (where) {
        case 0:         /* If then_branch initializer */
                f_msg(&sub, 5, &t);
                f_str(&a, 1, "then_branch");
                f_msg(&a, 6, &sub);
                f_varint(&a, 20, 5);
                node(&n, "If", NULL);
                f_msg(&n, 5, &a);
                f_msg(&g, 1, &n);
                break;
        case 1:         /* Scan body in attribute graphs */
                f_msg(&sub, 5, &t);
                f_str(&a, 1, "body");
                f_msg(&a, 11, &sub);
                node(&n, "Scan", NULL);
                f_msg(&n, 5, &a);
                f_msg(&g, 1, &n);
                break;
        case 2:         /* Constant attribute t */
                f_str(&a, 1, "value");
                f_msg(&a, 5, &t);
                node(&n, "Constant", NULL);
                f_msg(&n, 5, &a);
                f_msg(&g, 1, &n);
                break;
        case 3:         /* attribute tensors */
                f_str(&a, 1, "values");
                f_msg(&a, 10, &t);
                node(&n, "Custom", NULL);
                f_msg(&n, 5, &a);
                f_msg(&g, 1, &n);
                break;
        case 4:         /* sparse_initializer indices */
                f_msg(&s, 2, &t);
                f_msg(&g, 15, &s);
                break;
        case 5:         /* attribute sparse_tensor values */
                f_msg(&s, 1, &t);
                f_str(&a, 1, "value");
                f_msg(&a, 22, &s);
                node(&n, "Constant", NULL);
                f_msg(&n, 5, &a);
                f_msg(&g, 1, &n);
                break;
        case 6:         /* function body */
                f_str(&a, 1, "value");
                f_msg(&a, 5, &t);
                node(&n, "Constant", NULL);
                f_msg(&n, 5, &a);
                f_str(&fn, 1, "F");
                f_str(&fn, 10, "local");
                f_msg(&fn, 7, &n);
                f_msg(&m, 25, &fn);
                break;
        case 7:         /* function attribute default */
                f_str(&a, 1, "value");
                f_msg(&a, 5, &t);
                f_str(&fn, 1, "F");
                f_msg(&fn, 11, &a);
                f_msg(&m, 25, &fn);
                break;
        case 8:         /* training_info algorithm */
                f_msg(&sub, 5, &t);
                f_msg(&s, 2, &sub);
                f_msg(&m, 20, &s);
                break;
        }
        free(t.p);
        f_str(&g, 2, "main");
        f_msg(&m, 7, &g);
        return m;
}

static void test_external_hidden_everywhere_is_found(void) {
        static const char *const where[] = {
                "attribute 'then_branch' > graph #0", "attribute 'body' > graph #0",
                "attribute 'value'", "attribute 'values'", "sparse_initializer #0",
                "attribute 'value' > sparse_tensor #0", "function 'F' > node 'n0' (Constant)",
                "function 'F' > attribute 'value'", "training_info #0 > graph #0",
        };
        for (int i = 0; i < 9; i++) {
                struct buf m = model_hiding(i);
                struct scan_report *r = scan_buf(&m);
                TAP_CHECK(r->format == FMT_ONNX);
                CHECK_FINDING(r, RULE_ONNX_EXTERNAL_DATA, "'../../secret'");
                CHECK_FINDING(r, RULE_ONNX_EXTERNAL_DATA, where[i]);
                free(m.p);
                free(r);
        }
}

static void test_external_findings_are_bounded(void) {
        struct buf m = { 0 }, g = { 0 };
        for (int i = 0; i < 1000; i++) {
                struct buf t = { 0 };
                char name[16];
                snprintf(name, sizeof(name), "w%d", i);
                tensor(&t, name, "/etc/x", 6);
                f_msg(&g, 5, &t);
        }
        f_varint(&m, 1, 8);
        f_msg(&m, 7, &g);
        struct scan_report *r = scan_buf(&m);
        TAP_CHECK(count_findings(r, RULE_ONNX_EXTERNAL_DATA, NULL) == 17);
        CHECK_FINDING(r, RULE_ONNX_EXTERNAL_DATA, "984 more tensors");
        free(m.p);
        free(r);
}

/* ---- the walk: structure ---- */

static void test_clean_model_has_no_findings(void) {
        struct buf m = model("weights/w.bin");
        struct scan_report *r = scan_buf(&m);
        TAP_CHECK(r->format == FMT_ONNX);
        CHECK_NO_FINDINGS(r);
        free(m.p);
        free(r);
}

static void test_truncation_at_every_byte(void) {
        struct buf m = model("../w.bin");
        for (size_t n = 0; n < m.len; n++) {
                struct scan_report *r = scan(m.p, n);
                if (r->format == FMT_ONNX)
                        TAP_CHECK(count_findings(r, RULE_MALFORMED, "runs past the end") +
                                  count_findings(r, RULE_MALFORMED, "cut off") > 0);
                free(r);
        }
        struct scan_report *r = scan_buf(&m);
        CHECK_FINDING(r, RULE_ONNX_EXTERNAL_DATA, NULL);
        free(m.p);
        free(r);
}

static void test_every_byte_flipped_never_crashes(void) {
        struct buf m = model("../w.bin");
        for (size_t i = 0; i < m.len; i++)
                for (unsigned v = 0; v < 256; v += 17) {
                        uint8_t save = m.p[i];
                        m.p[i] = (uint8_t) v;
                        free(scan(m.p, m.len));
                        m.p[i] = save;
                }
        free(m.p);
}

static void test_error_message_names_field_and_bytes(void) {
        struct buf m = { 0 };
        f_varint(&m, 1, 8);
        b_tag(&m, 7, PB_WIRE_LEN);
        b_varint(&m, 12345);
        b_put(&m, "\x0a\x00", 2);
        struct scan_report *r = scan_buf(&m);
        CHECK_FINDING(r, RULE_MALFORMED,
                      "ModelProto: field 7 (graph) at byte 2: length 12345 runs past the end of the file at byte 7");
        free(m.p);
        free(r);
}

static void test_nested_error_names_the_message(void) {
        struct buf m = { 0 }, g = { 0 };
        f_str(&g, 2, "main");
        b_put(&g, "\x0a\x05" "ab", 4);   /* node: length 5, 2 bytes left */
        f_varint(&m, 1, 8);
        f_msg(&m, 7, &g);
        struct scan_report *r = scan_buf(&m);
        CHECK_FINDING(r, RULE_MALFORMED, "GraphProto: field 1 (node) at byte 10: length 5 runs past the end of the message at byte 14");
        free(m.p);
        free(r);
}

static void test_groups_are_malformed(void) {
        struct buf m = model("w.bin");
        b_tag(&m, 30, PB_WIRE_SGROUP);
        b_tag(&m, 30, PB_WIRE_EGROUP);
        struct scan_report *r = scan_buf(&m);
        CHECK_FINDING(r, RULE_MALFORMED, "is a group");
        free(m.p);
        free(r);
}

static void test_varint_overflow_in_nested_message(void) {
        struct buf m = { 0 }, g = { 0 };
        b_tag(&g, 99, PB_WIRE_VARINT);
        b_put(&g, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x03", 10);
        f_varint(&m, 1, 8);
        f_msg(&m, 7, &g);
        struct scan_report *r = scan_buf(&m);
        CHECK_FINDING(r, RULE_MALFORMED, "field 99 at byte 4: a varint over 64 bits");
        free(m.p);
        free(r);
}

static void test_known_field_with_other_wire_type_is_ignored(void) {
        /* Parsers keep it as an unknown field: a varint "graph" is no graph. */
        struct buf m = model("w.bin");
        f_varint(&m, 7, 5);
        f_varint(&m, 1234, 5);               /* unknown fields too */
        struct scan_report *r = scan_buf(&m);
        TAP_CHECK(r->format == FMT_ONNX);
        CHECK_NO_FINDINGS(r);
        free(m.p);
        free(r);
}

/* Graphs in If then_branch attributes, `levels` deep, a hostile tensor at the bottom. */
static struct buf nested_model(int levels) {
        struct buf g = { 0 }, t = { 0 }, m = { 0 };
        tensor(&t, "deep", "/etc/x", 6);
        f_msg(&g, 5, &t);
        for (int k = 0; k < levels; k++) {
                struct buf a = { 0 }, n = { 0 }, outer = { 0 };
                f_str(&a, 1, "then_branch");
                f_msg(&a, 6, &g);
                node(&n, "If", NULL);
                f_msg(&n, 5, &a);
                f_msg(&outer, 1, &n);
                g = outer;
        }
        f_varint(&m, 1, 8);
        f_msg(&m, 7, &g);
        return m;
}

static void test_depth_limit(void) {
        /* Model 0, graph 1, then 3 per level; the tensor at 3 * levels + 2. */
        int deepest_ok = (ONNX_MESSAGE_DEPTH_MAX - 3) / 3;
        struct buf m = nested_model(deepest_ok);
        struct scan_report *r = scan_buf(&m);
        CHECK_FINDING(r, RULE_ONNX_EXTERNAL_DATA, "'/etc/x'");
        TAP_CHECK(count_findings(r, RULE_SCAN_ERROR, NULL) == 0);
        free(m.p);
        free(r);

        m = nested_model(deepest_ok + 1);
        r = scan_buf(&m);
        CHECK_FINDING(r, RULE_SCAN_ERROR, "nested more than 64 deep");
        TAP_CHECK(r->findings[0].severity == SEV_HIGH);
        free(m.p);
        free(r);

        m = nested_model(1000);
        r = scan_buf(&m);
        CHECK_FINDING(r, RULE_SCAN_ERROR, "nested more than");
        free(m.p);
        free(r);
}

/* ---- license, domains, polyglots ---- */

static struct buf model_with_meta(const char *k1, const char *v1, const char *k2, const char *v2) {
        struct buf m = model("w.bin");
        f_entry(&m, 14, k1, v1, strlen(v1));
        if (k2)
                f_entry(&m, 14, k2, v2, strlen(v2));
        return m;
}

static void test_license_from_metadata_props(void) {
        struct buf m = model_with_meta("author", "me", "LICENSE", "cc-by-nc-4.0");
        struct scan_report *r = scan_buf(&m);
        TAP_CHECK(r->has_license);
        TAP_CHECK_STR(r->license, "cc-by-nc-4.0");
        CHECK_NO_FINDINGS(r);
        free(m.p);
        free(r);

        m = model_with_meta("license", "apache-2.0", "license", "apache-2.0");
        r = scan_buf(&m);
        TAP_CHECK_STR(r->license, "apache-2.0");
        CHECK_NO_FINDINGS(r);
        free(m.p);
        free(r);

        m = model_with_meta("license", "apache-2.0", "License", "cc-by-nc-4.0");
        r = scan_buf(&m);
        CHECK_FINDING(r, RULE_MALFORMED, "two different license entries, 'apache-2.0' and 'cc-by-nc-4.0'");
        free(m.p);
        free(r);

        /* Reported once, however many there are. */
        m = model_with_meta("license", "a", "license", "b");
        for (int i = 0; i < 1000; i++)
                f_entry(&m, 14, "license", i % 2 ? "c" : "d", 1);
        r = scan_buf(&m);
        TAP_CHECK(count_findings(r, RULE_MALFORMED, "license") == 1);
        free(m.p);
        free(r);

        m = model_with_meta("licence_url", "x", NULL, NULL);
        r = scan_buf(&m);
        TAP_CHECK(!r->has_license);
        free(m.p);
        free(r);
}

static struct buf model_with_domains(const char *const *domains, size_t n, bool local_function) {
        struct buf m = { 0 }, g = { 0 };
        f_varint(&m, 1, 8);
        for (size_t i = 0; i < n; i++) {
                struct buf nd = { 0 };
                node(&nd, "Op", domains[i]);
                f_msg(&g, 1, &nd);
        }
        f_msg(&m, 7, &g);
        if (local_function) {
                struct buf fn = { 0 };
                f_str(&fn, 1, "Op");
                f_str(&fn, 10, "local.fn");
                f_msg(&m, 25, &fn);
        }
        return m;
}

static void test_custom_domains_are_info(void) {
        static const char *const standard[] = { "", "ai.onnx", "ai.onnx.ml", "com.microsoft", "ai.onnx.preview.training" };
        struct buf m = model_with_domains(standard, 5, false);
        struct scan_report *r = scan_buf(&m);
        CHECK_NO_FINDINGS(r);
        free(m.p);
        free(r);

        static const char *const custom[] = { "ai.onnx.contrib", "com.example", "ai.onnx.contrib", "local.fn" };
        m = model_with_domains(custom, 4, true);
        r = scan_buf(&m);
        CHECK_FINDING(r, RULE_UNSAFE_IMPORT, "custom operator domain 'ai.onnx.contrib' (2 nodes, e.g. 'Op')");
        CHECK_FINDING(r, RULE_UNSAFE_IMPORT, "custom operator domain 'com.example' (1 node,");
        TAP_CHECK(count_findings(r, RULE_UNSAFE_IMPORT, "local.fn") == 0);
        TAP_CHECK(report_worst_severity(r) == SEV_INFO);
        TAP_CHECK(r->n_globals == 0);
        free(m.p);
        free(r);

        static const char *const many[] = { "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d9" };
        m = model_with_domains(many, 11, false);
        r = scan_buf(&m);
        TAP_CHECK(count_findings(r, RULE_UNSAFE_IMPORT, "custom operator domain '") == 8);
        CHECK_FINDING(r, RULE_UNSAFE_IMPORT, "3 more nodes in custom operator domains");
        free(m.p);
        free(r);
}

static void test_pickle_polyglot_is_scanned_both_ways(void) {
        struct buf m = { 0 }, model_b = model("w.bin");
        b_put(&m, "}.\0\0\0", 5);   /* field 15, fixed32 "." 0 0 0; as a pickle: {} STOP */
        b_put(&m, model_b.p, model_b.len);
        struct scan_report *r = scan_buf(&m);
        TAP_CHECK(r->format == FMT_ONNX);
        CHECK_FINDING(r, RULE_MALFORMED, "also a pickle stream");
        free(m.p);
        free(model_b.p);
        free(r);
}

TAP_MAIN(
        TAP_CASE(test_varint_one_and_two_bytes),
        TAP_CASE(test_varint_ten_bytes_is_the_maximum),
        TAP_CASE(test_varint_overflow_and_too_long_are_errors),
        TAP_CASE(test_varint_cut_by_the_end),
        TAP_CASE(test_field_each_wire_type),
        TAP_CASE(test_field_errors),
        TAP_CASE(test_sniff_accepts_models),
        TAP_CASE(test_sniff_accepts_damaged_model_starting_with_ir_version),
        TAP_CASE(test_sniff_rejects_other_content),
        TAP_CASE(test_external_locations_inside_are_fine),
        TAP_CASE(test_external_locations_outside_are_critical),
        TAP_CASE(test_external_without_location_is_malformed),
        TAP_CASE(test_external_data_location_truncated_to_int32),
        TAP_CASE(test_external_location_checked_without_data_location),
        TAP_CASE(test_external_hidden_everywhere_is_found),
        TAP_CASE(test_external_findings_are_bounded),
        TAP_CASE(test_clean_model_has_no_findings),
        TAP_CASE(test_truncation_at_every_byte),
        TAP_CASE(test_every_byte_flipped_never_crashes),
        TAP_CASE(test_error_message_names_field_and_bytes),
        TAP_CASE(test_nested_error_names_the_message),
        TAP_CASE(test_groups_are_malformed),
        TAP_CASE(test_varint_overflow_in_nested_message),
        TAP_CASE(test_known_field_with_other_wire_type_is_ignored),
        TAP_CASE(test_depth_limit),
        TAP_CASE(test_license_from_metadata_props),
        TAP_CASE(test_custom_domains_are_info),
        TAP_CASE(test_pickle_polyglot_is_scanned_both_ways)
)
