/* test-keras.c — unit tests for the Keras config walker and the HDF5 reader. Every
 * HDF5 image is built here byte by byte (superblock, object header, attribute,
 * global heap), so each malformation is visible in the test that checks it. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hdf5.h"
#include "json.h"
#include "keras.h"
#include "report.h"
#include "scan.h"
#include "tap.h"

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
                memset(b->p + b->cap, 0, cap - b->cap);
                b->cap = cap;
        }
        if (n)
                memcpy(b->p + b->len, d, n);
        b->len += n;
}

static void b_uint(struct buf *b, uint64_t v, unsigned size) {
        for (unsigned i = 0; i < size; i++) {
                uint8_t x = (uint8_t) (v >> (8 * i));
                b_put(b, &x, 1);
        }
}

static void b_zero(struct buf *b, size_t n) {
        static const uint8_t z[64];
        while (n > 0) {
                size_t k = n < sizeof(z) ? n : sizeof(z);
                b_put(b, z, k);
                n -= k;
        }
}

static void b_pad8(struct buf *b, size_t from) {
        while ((b->len - from) % 8)
                b_zero(b, 1);
}

static void b_set(struct buf *b, size_t at, uint64_t v, unsigned size) {
        TAP_CHECK(at + size <= b->len);
        for (unsigned i = 0; i < size; i++)
                b->p[at + i] = (uint8_t) (v >> (8 * i));
}

#define UNDEF UINT64_MAX

static const char LAMBDA_CONFIG[] =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": ["
        "{\"class_name\": \"Lambda\", \"config\": {\"name\": \"evil\", \"function\": [\"4wEA\", null, null],"
        " \"function_type\": \"lambda\"}}]}}";

/* ---- HDF5 images ---- */

enum value_kind {
        VALUE_FIXED,              /* fixed-length string, null-padded */
        VALUE_VLEN,               /* variable-length string in the global heap */
};

struct image_opts {
        unsigned sb_version;      /* 0 or 2 */
        size_t userblock;
        enum value_kind value;
        bool continuation;        /* the attribute sits in a continuation chunk */
        bool loop;                /* the continuation chunk continues to itself */
        uint16_t heap_index;      /* the object the attribute names (1 = the one there) */
        const char *json;
        const char *attr_name;
};

/* A datatype message: fixed-length string or vlen string of 1-byte chars. */
static void put_datatype(struct buf *b, enum value_kind kind, size_t fixed_len) {
        if (kind == VALUE_FIXED) {
                b_uint(b, 0x13, 1);       /* class 3, version 1 */
                b_uint(b, 0x01, 3);       /* null pad, ASCII */
                b_uint(b, fixed_len, 4);
                return;
        }
        b_uint(b, 0x19, 1);               /* class 9, version 1 */
        b_uint(b, 0x01, 3);               /* string, null-terminated, ASCII */
        b_uint(b, 16, 4);
        b_uint(b, 0x10, 1);               /* base: fixed-point, version 1 */
        b_uint(b, 0, 3);
        b_uint(b, 1, 4);
        b_uint(b, 0, 2);                  /* bit offset */
        b_uint(b, 8, 2);                  /* precision */
}

/* An attribute message body: version 1 (padded) for v1 headers, 3 for v2. */
static void put_attribute(struct buf *b, const struct image_opts *o, uint64_t gcol_addr) {
        const char *name = o->attr_name ? o->attr_name : "model_config";
        size_t nlen = strlen(name) + 1, jlen = strlen(o->json);
        struct buf dt = { 0 }, ds = { 0 };
        size_t start = b->len;

        put_datatype(&dt, o->value, jlen);
        b_uint(&ds, 1, 1);                /* dataspace version 1, scalar */
        b_zero(&ds, 7);
        if (o->sb_version < 2) {
                b_uint(b, 1, 1);
                b_zero(b, 1);
                b_uint(b, nlen, 2);
                b_uint(b, dt.len, 2);
                b_uint(b, ds.len, 2);
                b_put(b, name, nlen);
                b_pad8(b, start + 8);
                size_t s = b->len;
                b_put(b, dt.p, dt.len);
                b_pad8(b, s);
                s = b->len;
                b_put(b, ds.p, ds.len);
                b_pad8(b, s);
        } else {
                b_uint(b, 3, 1);
                b_zero(b, 1);
                b_uint(b, nlen, 2);
                b_uint(b, dt.len, 2);
                b_uint(b, ds.len, 2);
                b_zero(b, 1);             /* ASCII name */
                b_put(b, name, nlen);
                b_put(b, dt.p, dt.len);
                b_put(b, ds.p, ds.len);
        }
        if (o->value == VALUE_FIXED)
                b_put(b, o->json, jlen);
        else {
                b_uint(b, jlen, 4);
                b_uint(b, gcol_addr, 8);
                b_uint(b, o->heap_index ? o->heap_index : 1, 4);
        }
        free(dt.p);
        free(ds.p);
}

/* One message of an object header, header included; returns where its body starts. */
static size_t put_message(struct buf *b, unsigned oh_version, uint16_t type, const struct buf *body) {
        size_t size = body->len;

        if (oh_version == 1) {
                size = (size + 7) & ~(size_t) 7;
                b_uint(b, type, 2);
                b_uint(b, size, 2);
                b_zero(b, 4);
        } else {
                b_uint(b, type, 1);
                b_uint(b, size, 2);
                b_zero(b, 1);
        }
        size_t at = b->len;
        b_put(b, body->p, body->len);
        b_zero(b, size - body->len);
        return at;
}

/* The whole file; addresses are relative to the superblock (after the user block). */
static struct buf image_build(const struct image_opts *o) {
        struct buf b = { 0 }, attr = { 0 }, cont = { 0 };
        unsigned ohv = o->sb_version < 2 ? 1 : 2;
        size_t ub = o->userblock, eof_at, root_at, sb_end, jlen = strlen(o->json);
        uint64_t gcol_addr;

        b_zero(&b, ub);
        b_put(&b, HDF5_SIGNATURE, HDF5_SIGNATURE_LEN);
        if (o->sb_version < 2) {
                uint8_t v[8] = { 0, 0, 0, 0, 0, 8, 8, 0 };
                b_put(&b, v, 8);
                b_uint(&b, 4, 2);
                b_uint(&b, 16, 2);
                b_uint(&b, 0, 4);
                b_uint(&b, 0, 8);                 /* base */
                b_uint(&b, UNDEF, 8);             /* free space */
                eof_at = b.len;
                b_uint(&b, 0, 8);                 /* end of file, set below */
                b_uint(&b, UNDEF, 8);             /* driver */
                b_uint(&b, 0, 8);                 /* root entry: link name offset */
                root_at = b.len;
                b_uint(&b, 0, 8);                 /* root object header, set below */
                b_zero(&b, 4 + 4 + 16);
        } else {
                uint8_t v[4] = { (uint8_t) o->sb_version, 8, 8, 0 };
                b_put(&b, v, 4);
                b_uint(&b, 0, 8);
                b_uint(&b, UNDEF, 8);
                eof_at = b.len;
                b_uint(&b, 0, 8);
                root_at = b.len;
                b_uint(&b, 0, 8);
                b_zero(&b, 4);                    /* checksum: not verified */
        }
        sb_end = b.len;
        b_set(&b, root_at, sb_end - ub, 8);

        /* The global heap goes last; its address is known once the header is laid
         * out, so the header is laid out with a placeholder and patched. */
        put_attribute(&attr, o, 0);

        size_t oh = b.len, cont_msg_at = 0, attr_msg_at = 0, chunk0_start;
        if (ohv == 1) {
                b_uint(&b, 1, 1);
                b_zero(&b, 1);
                b_uint(&b, 2, 2);                 /* messages */
                b_uint(&b, 1, 4);
                b_uint(&b, 0, 4);                 /* header size, set below */
                b_zero(&b, 4);
        } else {
                b_put(&b, "OHDR", 4);
                b_uint(&b, 2, 1);
                b_uint(&b, 0x02, 1);              /* chunk 0 size in 4 bytes */
                b_uint(&b, 0, 4);
        }
        chunk0_start = b.len;
        if (o->continuation) {
                b_uint(&cont, 0, 8);
                b_uint(&cont, 0, 8);
                cont_msg_at = put_message(&b, ohv, 0x10, &cont);
        } else
                attr_msg_at = put_message(&b, ohv, 0x0C, &attr);
        if (ohv == 1)
                b_set(&b, oh + 8, b.len - chunk0_start, 4);
        else {
                b_set(&b, oh + 6, b.len - chunk0_start, 4);
                b_zero(&b, 4);                    /* checksum */
        }

        if (o->continuation) {
                size_t chunk = b.len, body;
                struct buf loop = { 0 };
                if (ohv == 2)
                        b_put(&b, "OCHK", 4);
                body = b.len;
                attr_msg_at = put_message(&b, ohv, 0x0C, &attr);
                if (o->loop) {
                        b_uint(&loop, chunk - ub, 8);
                        b_uint(&loop, 0, 8);      /* length, set below */
                        size_t at = put_message(&b, ohv, 0x10, &loop);
                        free(loop.p);
                        if (ohv == 2)
                                b_zero(&b, 4);
                        b_set(&b, at + 8, b.len - chunk, 8);
                } else if (ohv == 2)
                        b_zero(&b, 4);
                (void) body;
                b_set(&b, cont_msg_at, chunk - ub, 8);
                b_set(&b, cont_msg_at + 8, b.len - chunk, 8);
        }

        gcol_addr = b.len - ub;
        if (o->value == VALUE_VLEN) {
                /* Patch the value's heap address inside the attribute message. */
                size_t value_at = attr_msg_at + attr.len - 12;
                b_set(&b, value_at, gcol_addr, 8);
                size_t g = b.len, objsize = (jlen + 7) & ~(size_t) 7;
                b_put(&b, "GCOL", 4);
                b_uint(&b, 1, 1);
                b_zero(&b, 3);
                b_uint(&b, 0, 8);                 /* collection size, set below */
                b_uint(&b, 1, 2);                 /* object 1 */
                b_uint(&b, 1, 2);
                b_zero(&b, 4);
                b_uint(&b, jlen, 8);
                b_put(&b, o->json, jlen);
                b_zero(&b, objsize - jlen);
                b_uint(&b, 0, 2);                 /* free space object */
                b_zero(&b, 6);
                b_uint(&b, 16, 8);
                b_zero(&b, 0);
                b_set(&b, g + 8, b.len - g, 8);
        }
        b_set(&b, eof_at, b.len - ub, 8);
        free(attr.p);
        free(cont.p);
        return b;
}

static void scan(const uint8_t *p, size_t n, struct scan_report *r) {
        report_init(r);
        scan_buffer(r, p, n);
}

static bool has_rule(const struct scan_report *r, enum mg_rule rule, int min_sev, const char *needle) {
        for (uint32_t i = 0; i < r->n_findings; i++) {
                const struct finding *f = &r->findings[i];
                if (f->rule == rule && (int) f->severity >= min_sev && (!needle || strstr(f->message, needle)))
                        return true;
        }
        return false;
}

static void dump(const struct scan_report *r) {
        fprintf(stderr, "# format %s\n", format_name((enum mg_format) r->format));
        for (uint32_t i = 0; i < r->n_findings; i++)
                fprintf(stderr, "# %s %s %s\n", rule_name((enum mg_rule) r->findings[i].rule),
                        severity_name((enum mg_severity) r->findings[i].severity), r->findings[i].message);
}

static struct scan_report *report_new(void) {
        struct scan_report *r = malloc(sizeof(*r));
        TAP_CHECK(r);
        return r;
}

static void expect_lambda(const struct image_opts *o) {
        struct buf b = image_build(o);
        struct scan_report *r = report_new();

        scan(b.p, b.len, r);
        dump(r);
        TAP_CHECK(r->format == FMT_KERAS_H5);
        TAP_CHECK(has_rule(r, RULE_KERAS_LAMBDA, SEV_CRITICAL, "'evil'"));
        TAP_CHECK(!has_rule(r, RULE_MALFORMED, SEV_INFO, NULL));
        free(b.p);
        free(r);
}

static void hdf5_fixed_string_model_config_is_walked(void) {
        expect_lambda(&(struct image_opts) { .value = VALUE_FIXED, .json = LAMBDA_CONFIG });
}

static void hdf5_vlen_string_is_read_from_the_global_heap(void) {
        expect_lambda(&(struct image_opts) { .value = VALUE_VLEN, .json = LAMBDA_CONFIG });
}

static void hdf5_v2_superblock_and_ohdr_continuation(void) {
        expect_lambda(&(struct image_opts) { .sb_version = 2, .value = VALUE_VLEN, .continuation = true,
                                             .json = LAMBDA_CONFIG });
        expect_lambda(&(struct image_opts) { .sb_version = 3, .value = VALUE_FIXED, .json = LAMBDA_CONFIG });
}

static void hdf5_v1_continuation_chunk(void) {
        expect_lambda(&(struct image_opts) { .value = VALUE_FIXED, .continuation = true, .json = LAMBDA_CONFIG });
}

static void hdf5_user_block_offsets_are_searched(void) {
        static const size_t ubs[] = { 512, 1024, 4096, 65536 };
        for (size_t i = 0; i < sizeof(ubs) / sizeof(ubs[0]); i++) {
                struct image_opts o = { .userblock = ubs[i], .value = VALUE_VLEN, .json = LAMBDA_CONFIG };
                struct buf b = image_build(&o);
                uint64_t off;
                TAP_CHECK(!hdf5_sniff(b.p, b.len) && hdf5_sniff_userblock(b.p, b.len));
                TAP_CHECK(hdf5_find_superblock(b.p, b.len, &off) && off == ubs[i]);
                free(b.p);
                expect_lambda(&o);
        }
        /* Not a power of two: the library never looks there. */
        struct buf b = { 0 };
        b_zero(&b, 768);
        b_put(&b, HDF5_SIGNATURE, HDF5_SIGNATURE_LEN);
        b_zero(&b, 512);
        uint64_t off;
        TAP_CHECK(!hdf5_find_superblock(b.p, b.len, &off));
        /* A signature cut by the end of the file is no signature. */
        TAP_CHECK(!hdf5_find_superblock((const uint8_t *) HDF5_SIGNATURE, HDF5_SIGNATURE_LEN - 1, &off));
        free(b.p);
}

static void hdf5_continuation_loop_is_malformed(void) {
        for (unsigned v = 0; v <= 2; v += 2) {
                struct image_opts o = { .sb_version = v, .value = VALUE_FIXED, .continuation = true, .loop = true,
                                        .json = LAMBDA_CONFIG };
                struct buf b = image_build(&o);
                struct scan_report *r = report_new();
                scan(b.p, b.len, r);
                dump(r);
                TAP_CHECK(has_rule(r, RULE_MALFORMED, SEV_HIGH, "loops back"));
                TAP_CHECK(has_rule(r, RULE_KERAS_LAMBDA, SEV_CRITICAL, NULL));   /* seen before the loop */
                free(b.p);
                free(r);
        }
}

static void hdf5_missing_global_heap_object_is_malformed(void) {
        struct image_opts o = { .value = VALUE_VLEN, .heap_index = 7, .json = LAMBDA_CONFIG };
        struct buf b = image_build(&o);
        struct scan_report *r = report_new();

        scan(b.p, b.len, r);
        dump(r);
        TAP_CHECK(r->format == FMT_KERAS_H5);
        TAP_CHECK(has_rule(r, RULE_MALFORMED, SEV_HIGH, "global heap object is missing"));
        free(b.p);
        free(r);
}

static void hdf5_model_config_not_json_fails_closed(void) {
        struct image_opts o = { .value = VALUE_FIXED, .json = "{\"class_name\": " };
        struct buf b = image_build(&o);
        struct scan_report *r = report_new();

        scan(b.p, b.len, r);
        dump(r);
        TAP_CHECK(has_rule(r, RULE_MALFORMED, SEV_HIGH, "not valid JSON"));
        free(b.p);
        free(r);
}

static void hdf5_other_attribute_names_are_not_parsed(void) {
        struct image_opts o = { .value = VALUE_FIXED, .json = "not json at all", .attr_name = "model_configX" };
        struct buf b = image_build(&o);
        struct scan_report *r = report_new();

        scan(b.p, b.len, r);
        dump(r);
        TAP_CHECK(r->format == FMT_HDF5 && r->n_findings == 0);
        free(b.p);
        free(r);
}

/* Each prefix of a small image, with its end-of-file address set to the prefix so
 * the reader goes as deep as the bytes allow: never a crash or an over-read (ASan),
 * and never a quiet pass. */
static void hdf5_truncation_at_every_byte(void) {
        static const struct image_opts variants[] = {
                { .sb_version = 0, .value = VALUE_VLEN, .json = LAMBDA_CONFIG },
                { .sb_version = 0, .value = VALUE_FIXED, .continuation = true, .json = LAMBDA_CONFIG },
                { .sb_version = 2, .value = VALUE_VLEN, .continuation = true, .json = LAMBDA_CONFIG },
        };
        for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
                struct buf b = image_build(&variants[v]);
                size_t eof_at = variants[v].sb_version < 2 ? 40 : 28;
                struct scan_report *r = report_new();

                for (size_t n = HDF5_SIGNATURE_LEN; n < b.len; n++) {
                        uint8_t *p = malloc(n);
                        TAP_CHECK(p);
                        memcpy(p, b.p, n);
                        if (n >= eof_at + 8)
                                for (unsigned i = 0; i < 8; i++)
                                        p[eof_at + i] = (uint8_t) ((uint64_t) n >> (8 * i));
                        scan(p, n, r);
                        if (report_worst_severity(r) < SEV_HIGH) {
                                fprintf(stderr, "# variant %zu, %zu of %zu bytes\n", v, n, b.len);
                                dump(r);
                                TAP_CHECK(report_worst_severity(r) >= SEV_HIGH);
                        }
                        free(p);
                }
                /* Unpatched, every prefix is a truncated file. */
                scan(b.p, b.len - 1, r);
                TAP_CHECK(has_rule(r, RULE_MALFORMED, SEV_HIGH, "truncated"));
                free(r);
                free(b.p);
        }
}

/* ---- the config walker ---- */

static struct scan_report *walk_json(const char *text) {
        struct scan_report *r = report_new();
        struct scan_ctx ctx = { .report = r };
        struct json_doc *doc = NULL;
        char err[128];

        report_init(r);
        if (keras_json_parse((const uint8_t *) text, strlen(text), &doc, err, sizeof(err)) != 0) {
                fprintf(stderr, "# %s\n", err);
                TAP_CHECK(!"parse");
        }
        keras_config_scan(&ctx, json_root(doc));
        json_free(doc);
        dump(r);
        return r;
}

static void keras_nesting_depth_limit(void) {
        /* Lambda under 60 nested Sequentials (~240 JSON levels): past the walk's
         * bound, which is reported; under 20 it is found. */
        for (unsigned depth = 20; depth <= 60; depth += 40) {
                size_t cap = 64 * (depth + 2) + 256;
                char *s = malloc(cap);
                size_t n = 0;
                TAP_CHECK(s);
                for (unsigned i = 0; i < depth; i++)
                        n += (size_t) snprintf(s + n, cap - n, "{\"class_name\":\"Sequential\",\"config\":{\"layers\":[");
                n += (size_t) snprintf(s + n, cap - n, "{\"class_name\":\"Lambda\",\"config\":{\"name\":\"deep\"}}");
                for (unsigned i = 0; i < depth; i++)
                        n += (size_t) snprintf(s + n, cap - n, "]}}");
                struct scan_report *r = walk_json(s);
                if (depth == 20)
                        TAP_CHECK(has_rule(r, RULE_KERAS_LAMBDA, SEV_CRITICAL, "'deep'") &&
                                  !has_rule(r, RULE_MALFORMED, SEV_INFO, NULL));
                else
                        TAP_CHECK(has_rule(r, RULE_MALFORMED, SEV_HIGH, "nests more than"));
                free(r);
                free(s);
        }
}

static void keras_duplicate_keys(void) {
        struct scan_report *r;

        /* Python keeps the last: Lambda. */
        r = walk_json("{\"class_name\":\"Dense\",\"config\":{\"name\":\"d\"},\"class_name\":\"Lambda\"}");
        TAP_CHECK(has_rule(r, RULE_KERAS_LAMBDA, SEV_CRITICAL, NULL));
        TAP_CHECK(has_rule(r, RULE_MALFORMED, SEV_MEDIUM, "duplicated key (class_name)"));
        free(r);
        /* A reader keeping the first sees Lambda: reported too. */
        r = walk_json("{\"class_name\":\"Lambda\",\"config\":{\"name\":\"d\"},\"class_name\":\"Dense\"}");
        TAP_CHECK(has_rule(r, RULE_KERAS_LAMBDA, SEV_CRITICAL, NULL));
        free(r);
        /* Duplicated module: every value is judged. */
        r = walk_json("{\"module\":\"os\",\"class_name\":\"function\",\"config\":\"system\",\"module\":\"keras.activations\"}");
        TAP_CHECK(has_rule(r, RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, "os:system"));
        free(r);
}

static void keras_lambda_paths_name_the_wrappers(void) {
        struct scan_report *r = walk_json(
                "{\"class_name\":\"Functional\",\"config\":{\"name\":\"m\",\"layers\":[{},"
                "{\"class_name\":\"Bidirectional\",\"config\":{\"name\":\"bi\",\"forward_layer\":"
                "{\"class_name\":\"Lambda\",\"config\":{\"name\":\"evil\",\"function\":{\"class_name\":\"__lambda__\","
                "\"config\":{\"code\":\"4wEA\"}}}}}}]}}");
        TAP_CHECK(has_rule(r, RULE_KERAS_LAMBDA, SEV_CRITICAL,
                           "Lambda layer 'evil' inside Functional 'm' → layers[1] → Bidirectional 'bi' → forward_layer"));
        TAP_CHECK(has_rule(r, RULE_KERAS_LAMBDA, SEV_CRITICAL, "__lambda__"));
        TAP_CHECK(r->n_findings == 1);   /* the layer's own function is not reported twice */
        free(r);
}

static void keras_module_rules(void) {
        static const struct {
                const char *json;
                int rule;                 /* -1: no finding */
                int sev;
                const char *needle;
        } cases[] = {
                { "{\"module\":\"keras.layers\",\"class_name\":\"Dense\",\"config\":{}}", -1, 0, NULL },
                { "{\"module\":\"keras\",\"class_name\":\"Sequential\",\"config\":{}}", -1, 0, NULL },
                { "{\"module\":\"tensorflow.keras.layers\",\"class_name\":\"Dense\",\"config\":{}}", -1, 0, NULL },
                { "{\"module\":\"keras_hub.src.models.gemma\",\"class_name\":\"GemmaBackbone\",\"config\":{},\"registered_name\":\"keras_hub>GemmaBackbone\"}", -1, 0, NULL },
                { "{\"module\":\"keras.losses\",\"class_name\":\"function\",\"config\":\"mean_squared_error\"}", -1, 0, NULL },
                { "{\"module\":\"builtins\",\"class_name\":\"function\",\"config\":\"relu\"}", -1, 0, NULL },
                { "{\"module\":\"builtins\",\"class_name\":\"function\",\"config\":\"eval\"}", RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, "builtins:eval" },
                { "{\"module\":\"os\",\"class_name\":\"system\",\"config\":{}}", RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, "os:system" },
                { "{\"module\":\"os.path\",\"class_name\":\"function\",\"config\":\"join\"}", RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, "os.path:join" },
                { "{\"module\":\"__main__\",\"class_name\":\"function\",\"config\":\"my_loss\"}", RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, NULL },
                { "{\"module\":\"my_pkg.layers\",\"class_name\":\"MyLayer\",\"config\":{},\"registered_name\":\"MyPkg>MyLayer\"}", RULE_KERAS_UNSAFE_CLASS, SEV_HIGH, "my_pkg.layers:MyLayer" },
                { "{\"module\":\"kerasx\",\"class_name\":\"Dense\",\"config\":{}}", RULE_KERAS_UNSAFE_CLASS, SEV_HIGH, "kerasx:Dense" },
                { "{\"class_name\":\"MyLayer\",\"config\":{},\"registered_name\":\"MyPkg>MyLayer\"}", RULE_KERAS_UNSAFE_CLASS, SEV_LOW, "MyPkg>MyLayer" },
                { "{\"module\":\"keras.utils\",\"class_name\":\"function\",\"config\":\"get_file\"}", RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, "get_file" },
                { "{\"module\":\"keras.config\",\"class_name\":\"function\",\"config\":\"enable_unsafe_deserialization\"}", RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, NULL },
                { "{\"class_name\":\"__typespec__\",\"spec_name\":\"TensorSpec\",\"module\":\"subprocess\",\"config\":[]}", RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, "subprocess:TensorSpec" },
                { "{\"class_name\":\"TFOpLambda\",\"config\":{\"name\":\"w\",\"function\":\"io.write_file\"}}", RULE_KERAS_UNSAFE_CLASS, SEV_HIGH, "io.write_file" },
                { "{\"class_name\":\"TFOpLambda\",\"config\":{\"name\":\"a\",\"function\":\"__operators__.add\"}}", -1, 0, NULL },
                { "{\"class_name\":\"TFSMLayer\",\"config\":{\"name\":\"t\",\"filepath\":\"/x\"}}", RULE_KERAS_UNSAFE_CLASS, SEV_HIGH, "/x" },
                /* Deeply inside a non-Keras dict: still found. */
                { "{\"a\":{\"b\":[{\"c\":{\"module\":\"posix\",\"class_name\":\"function\",\"config\":\"system\"}}]}}", RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, "a.b[0].c" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct scan_report *r = walk_json(cases[i].json);
                if (cases[i].rule < 0) {
                        if (r->n_findings != 0)
                                fprintf(stderr, "# case %zu: %s\n", i, cases[i].json);
                        TAP_CHECK(r->n_findings == 0);
                } else {
                        if (!has_rule(r, (enum mg_rule) cases[i].rule, cases[i].sev, cases[i].needle) ||
                            report_worst_severity(r) != cases[i].sev)
                                fprintf(stderr, "# case %zu: %s\n", i, cases[i].json);
                        TAP_CHECK(has_rule(r, (enum mg_rule) cases[i].rule, cases[i].sev, cases[i].needle));
                        TAP_CHECK(report_worst_severity(r) == cases[i].sev);
                }
                free(r);
        }
}

static void keras_sniff_needs_class_name_and_config(void) {
        static const struct {
                const char *json;
                bool keras;
        } cases[] = {
                { "{\"class_name\":\"Sequential\",\"config\":{}}", true },
                { "{\"class_name\":\"Sequential\",\"config\":[]}", false },
                { "{\"class_name\":1,\"config\":{}}", false },
                { "{\"config\":{}}", false },
                { "[{\"class_name\":\"Sequential\",\"config\":{}}]", false },
                { "{\"class_name\":\"X\",\"config\":{},\"class_name\":\"Sequential\"}", true },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct json_doc *doc;
                char err[128];
                TAP_CHECK(keras_json_parse((const uint8_t *) cases[i].json, strlen(cases[i].json), &doc, err,
                                           sizeof(err)) == 0);
                TAP_CHECK(keras_config_sniff(json_root(doc)) == cases[i].keras);
                json_free(doc);
        }
        /* A UTF-8 byte order mark, as json.loads(bytes) allows. */
        struct json_doc *doc;
        char err[128];
        const char bom[] = "\xef\xbb\xbf{\"class_name\":\"Sequential\",\"config\":{}}";
        TAP_CHECK(keras_json_parse((const uint8_t *) bom, strlen(bom), &doc, err, sizeof(err)) == 0);
        TAP_CHECK(keras_config_sniff(json_root(doc)));
        json_free(doc);
}

TAP_MAIN(TAP_CASE(hdf5_fixed_string_model_config_is_walked),
         TAP_CASE(hdf5_vlen_string_is_read_from_the_global_heap),
         TAP_CASE(hdf5_v2_superblock_and_ohdr_continuation),
         TAP_CASE(hdf5_v1_continuation_chunk),
         TAP_CASE(hdf5_user_block_offsets_are_searched),
         TAP_CASE(hdf5_continuation_loop_is_malformed),
         TAP_CASE(hdf5_missing_global_heap_object_is_malformed),
         TAP_CASE(hdf5_model_config_not_json_fails_closed),
         TAP_CASE(hdf5_other_attribute_names_are_not_parsed),
         TAP_CASE(hdf5_truncation_at_every_byte),
         TAP_CASE(keras_nesting_depth_limit),
         TAP_CASE(keras_duplicate_keys),
         TAP_CASE(keras_lambda_paths_name_the_wrappers),
         TAP_CASE(keras_module_rules),
         TAP_CASE(keras_sniff_needs_class_name_and_config))
