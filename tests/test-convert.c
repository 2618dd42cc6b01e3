/* test-convert.c — unit tests for `modelgate convert`'s parts: the allowlist-only
 * pickle evaluator (every refusal, truncation and corruption of a checkpoint at
 * every byte), the flattening and tied-weight rules, the plan's validation on the
 * front end's side, and the safetensors writer (read back through the scanner's
 * own safetensors check). Pickles and archives are assembled here, opcode by
 * opcode, the way torch.save writes them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "convert-plan.h"
#include "convert-write.h"
#include "convert.h"
#include "report.h"
#include "scan.h"
#include "tap.h"
#include "torch-state.h"
#include "worker-proto.h"

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

static void b_le(struct buf *b, uint64_t v, int n) {
        for (int i = 0; i < n; i++)
                b_u8(b, (uint8_t) (v >> (8 * i)));
}

static void b_str(struct buf *b, const char *s) {
        b_put(b, s, strlen(s));
}

/* ---- pickle assembly ---- */

static void p_op(struct buf *b, char op) {
        b_u8(b, (uint8_t) op);
}

static void p_s(struct buf *b, const char *s) {
        p_op(b, 'X');
        b_le(b, strlen(s), 4);
        b_str(b, s);
}

static void p_int(struct buf *b, long long v) {
        if (v >= 0 && v < 256) {
                p_op(b, 'K');
                b_u8(b, (uint8_t) v);
        } else if (v >= 0 && v < 65536) {
                p_op(b, 'M');
                b_le(b, (uint64_t) v, 2);
        } else {
                p_op(b, 'J');
                b_le(b, (uint64_t) v, 4);
        }
}

static void p_float(struct buf *b, double d) {
        uint64_t bits;
        memcpy(&bits, &d, 8);
        p_op(b, 'G');
        for (int i = 7; i >= 0; i--)
                b_u8(b, (uint8_t) (bits >> (8 * i)));
}

static void p_global(struct buf *b, const char *m, const char *n) {
        p_op(b, 'c');
        b_str(b, m);
        b_u8(b, '\n');
        b_str(b, n);
        b_u8(b, '\n');
}

static void p_put(struct buf *b, unsigned idx) {
        p_op(b, 'q');
        b_u8(b, (uint8_t) idx);
}

static void p_get(struct buf *b, unsigned idx) {
        p_op(b, 'h');
        b_u8(b, (uint8_t) idx);
}

static void p_dims(struct buf *b, const uint64_t *d, int n) {
        p_op(b, '(');
        for (int i = 0; i < n; i++)
                p_int(b, (long long) d[i]);
        p_op(b, 't');
}

struct tdesc {
        const char *stype;      /* "FloatStorage" */
        const char *key;
        uint64_t numel;         /* of the storage */
        uint64_t offset;
        int ndim;
        uint64_t shape[9], stride[9];
        bool legacy;            /* 6-item persistent id */
};

/* A tensor as torch.save writes it: _rebuild_tensor_v2 over a persistent id. */
static void p_tensor(struct buf *b, const struct tdesc *t) {
        p_global(b, "torch._utils", "_rebuild_tensor_v2");
        p_op(b, '(');
        p_op(b, '(');
        p_s(b, "storage");
        p_global(b, "torch", t->stype);
        p_s(b, t->key);
        p_s(b, "cpu");
        p_int(b, (long long) t->numel);
        if (t->legacy)
                p_op(b, 'N');
        p_op(b, 't');
        p_op(b, 'Q');
        p_int(b, (long long) t->offset);
        p_dims(b, t->shape, t->ndim);
        p_dims(b, t->stride, t->ndim);
        p_op(b, '\x89');
        p_global(b, "collections", "OrderedDict");
        p_op(b, ')');
        p_op(b, 'R');
        p_op(b, 't');
        p_op(b, 'R');
}

static struct tdesc W = { "FloatStorage", "0", 6, 0, 2, { 3, 2 }, { 2, 1 }, false };
static struct tdesc B = { "FloatStorage", "1", 3, 0, 1, { 3 }, { 1 }, false };

/* {"weight": W, "bias": B, "epoch": 3, "lr": 0.1, "name": "x\n", "betas": (0.9, 0.99)}
 * as an OrderedDict with a _metadata BUILD, memoized like torch.save's output. */
static void state_dict_pickle(struct buf *b, bool legacy) {
        struct tdesc w = W, bb = B;
        w.legacy = bb.legacy = legacy;
        p_op(b, '\x80');
        b_u8(b, 2);
        p_global(b, "collections", "OrderedDict");
        p_put(b, 0);
        p_op(b, ')');
        p_op(b, 'R');
        p_put(b, 1);
        p_op(b, '(');
        p_s(b, "weight");
        p_tensor(b, &w);
        p_s(b, "bias");
        p_tensor(b, &bb);
        p_s(b, "epoch");
        p_int(b, 3);
        p_s(b, "lr");
        p_float(b, 0.1);
        p_s(b, "name");
        p_s(b, "x\n");
        p_s(b, "betas");
        p_float(b, 0.9);
        p_float(b, 0.99);
        p_op(b, '\x86');
        p_op(b, 'u');
        p_op(b, '}');
        p_s(b, "_metadata");
        p_get(b, 0);
        p_op(b, ')');
        p_op(b, 'R');
        p_op(b, 's');
        p_op(b, 'b');
        p_op(b, '.');
}

/* ---- zip assembly: stored members, as PyTorchStreamWriter lays them out ---- */

struct member {
        const char *name;
        const uint8_t *data;
        size_t len;
};

static void zip_build(struct buf *z, const struct member *m, size_t n, uint64_t *ret_offsets) {
        struct buf cd = { 0 };

        for (size_t i = 0; i < n; i++) {
                uint32_t crc = (uint32_t) crc32(0, m[i].data, (uInt) m[i].len);
                uint64_t off = z->len;
                b_le(z, 0x04034b50, 4);
                b_le(z, 20, 2);
                b_le(z, 0, 2);
                b_le(z, 0, 2);
                b_le(z, 0, 4);
                b_le(z, crc, 4);
                b_le(z, m[i].len, 4);
                b_le(z, m[i].len, 4);
                b_le(z, strlen(m[i].name), 2);
                b_le(z, 0, 2);
                b_str(z, m[i].name);
                if (ret_offsets)
                        ret_offsets[i] = z->len;
                b_put(z, m[i].data, m[i].len);

                b_le(&cd, 0x02014b50, 4);
                b_le(&cd, 20, 2);
                b_le(&cd, 20, 2);
                b_le(&cd, 0, 2);
                b_le(&cd, 0, 2);
                b_le(&cd, 0, 4);
                b_le(&cd, crc, 4);
                b_le(&cd, m[i].len, 4);
                b_le(&cd, m[i].len, 4);
                b_le(&cd, strlen(m[i].name), 2);
                b_le(&cd, 0, 2);
                b_le(&cd, 0, 2);
                b_le(&cd, 0, 2);
                b_le(&cd, 0, 2);
                b_le(&cd, 0, 4);
                b_le(&cd, off, 4);
                b_str(&cd, m[i].name);
        }
        uint64_t cd_off = z->len;
        b_put(z, cd.p, cd.len);
        b_le(z, 0x06054b50, 4);
        b_le(z, 0, 2);
        b_le(z, 0, 2);
        b_le(z, n, 2);
        b_le(z, n, 2);
        b_le(z, cd.len, 4);
        b_le(z, cd_off, 4);
        b_le(z, 0, 2);
        free(cd.p);
}

static const float w_data[6] = { 1, 2, 3, 4, 5, 6 };
static const float b_data[3] = { -1, -2, -3 };

/* A torch zip checkpoint around a data.pkl; the storage offsets of "0" and "1". */
static void torch_zip(struct buf *z, const struct buf *pkl, uint64_t *ret_w, uint64_t *ret_b) {
        struct member m[] = {
                { "archive/data.pkl", pkl->p, pkl->len },
                { "archive/data/0", (const uint8_t *) w_data, sizeof(w_data) },
                { "archive/data/1", (const uint8_t *) b_data, sizeof(b_data) },
                { "archive/version", (const uint8_t *) "3\n", 2 },
        };
        uint64_t offs[4];
        zip_build(z, m, 4, offs);
        if (ret_w)
                *ret_w = offs[1];
        if (ret_b)
                *ret_b = offs[2];
}

/* The legacy layout: magic, protocol, sys_info, data, keys, then the records. */
static void legacy_file(struct buf *f, const struct buf *data, uint64_t *ret_w, uint64_t *ret_b) {
        static const uint8_t magic[] = { 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };
        p_op(f, '\x80');
        b_u8(f, 2);
        p_op(f, '\x8a');
        b_u8(f, sizeof(magic));
        b_put(f, magic, sizeof(magic));
        p_op(f, '.');
        p_op(f, '\x80');
        b_u8(f, 2);
        p_int(f, 1001);
        p_op(f, '.');
        p_op(f, '\x80');
        b_u8(f, 2);
        p_op(f, '}');
        p_s(f, "protocol_version");
        p_int(f, 1001);
        p_op(f, 's');
        p_s(f, "little_endian");
        p_op(f, '\x88');
        p_op(f, 's');
        p_op(f, '.');
        b_put(f, data->p, data->len);
        p_op(f, '\x80');
        b_u8(f, 2);
        p_op(f, ']');
        p_op(f, '(');
        p_s(f, "0");
        p_s(f, "1");
        p_op(f, 'e');
        p_op(f, '.');
        b_le(f, 6, 8);
        *ret_w = f->len;
        b_put(f, w_data, sizeof(w_data));
        b_le(f, 3, 8);
        *ret_b = f->len;
        b_put(f, b_data, sizeof(b_data));
}

static const struct plan_tensor *find_tensor(const struct plan *p, const char *name) {
        for (size_t i = 0; i < p->n_tensors; i++)
                if (strcmp(p->tensors[i].name, name) == 0)
                        return &p->tensors[i];
        return NULL;
}

static const char *find_meta(const struct plan *p, enum plan_meta_kind kind, const char *key) {
        for (size_t i = 0; i < p->n_meta; i++)
                if (p->meta[i].kind == kind && strcmp(p->meta[i].key, key) == 0)
                        return p->meta[i].value;
        return NULL;
}

static void check_state_dict_plan(const struct plan *p, uint64_t w_off, uint64_t b_off) {
        const struct plan_tensor *w = find_tensor(p, "weight"), *b = find_tensor(p, "bias");
        TAP_CHECK(p->error == 0);
        TAP_CHECK(p->n_tensors == 2 && w && b);
        TAP_CHECK(w->dtype == PD_F32 && w->ndim == 2 && w->shape[0] == 3 && w->shape[1] == 2);
        TAP_CHECK(w->storage_start == w_off && w->storage_len == 24 && w->storage_offset == 0);
        TAP_CHECK(b->storage_start == b_off && b->storage_len == 12 && b->ndim == 1);
        TAP_CHECK(plan_tensor_contiguous(w));
        TAP_CHECK_STR(find_meta(p, PM_VALUE, "epoch"), "3");
        TAP_CHECK_STR(find_meta(p, PM_VALUE, "lr"), "0.1");
        TAP_CHECK_STR(find_meta(p, PM_VALUE, "name"), "\"x\\u000a\"");
        TAP_CHECK_STR(find_meta(p, PM_VALUE, "betas"), "[0.9, 0.99]");
}

static void zip_state_dict_converts(void) {
        struct buf pkl = { 0 }, z = { 0 };
        struct plan p;
        uint64_t wo, bo;

        state_dict_pickle(&pkl, false);
        torch_zip(&z, &pkl, &wo, &bo);
        TAP_CHECK(convert_plan_buffer(z.p, z.len, &p) == 0);
        TAP_CHECK(p.format == FMT_PYTORCH_ZIP);
        check_state_dict_plan(&p, wo, bo);
        plan_free(&p);
}

static void legacy_state_dict_converts(void) {
        struct buf pkl = { 0 }, f = { 0 };
        struct plan p;
        uint64_t wo, bo;

        state_dict_pickle(&pkl, true);
        legacy_file(&f, &pkl, &wo, &bo);
        TAP_CHECK(convert_plan_buffer(f.p, f.len, &p) == 0);
        TAP_CHECK(p.format == FMT_PYTORCH_LEGACY);
        check_state_dict_plan(&p, wo, bo);
        plan_free(&p);
}

static void truncated_data_pkl_at_every_byte_fails(void) {
        struct buf pkl = { 0 };
        struct ts_value root;
        size_t used;

        state_dict_pickle(&pkl, false);
        for (size_t n = 0; n < pkl.len; n++) {
                struct ts_state *s = ts_new();
                /* An exact-size copy, so that ASan sees any read past the end. */
                uint8_t *copy = malloc(n ? n : 1);
                memcpy(copy, pkl.p, n);
                TAP_CHECK(ts_eval(s, copy, n, TS_MODE_ZIP, &root, &used) == -EINVAL);
                TAP_CHECK(strstr(ts_error(s), "offset"));
                free(copy);
                ts_free(s);
        }
        struct ts_state *s = ts_new();
        TAP_CHECK(ts_eval(s, pkl.p, pkl.len, TS_MODE_ZIP, &root, &used) == 0 && used == pkl.len);
        TAP_CHECK(root.kind == TS_DICT && root.seq->n == 12);
        ts_free(s);
}

static void truncated_files_at_every_byte_fail(void) {
        struct buf pkl = { 0 }, lpkl = { 0 }, z = { 0 }, f = { 0 };
        uint64_t a, b;

        state_dict_pickle(&pkl, false);
        torch_zip(&z, &pkl, &a, &b);
        state_dict_pickle(&lpkl, true);
        legacy_file(&f, &lpkl, &a, &b);
        for (int which = 0; which < 2; which++) {
                const struct buf *x = which ? &f : &z;
                for (size_t n = 0; n < x->len; n++) {
                        struct plan p;
                        uint8_t *copy = malloc(n ? n : 1);
                        memcpy(copy, x->p, n);
                        TAP_CHECK(convert_plan_buffer(copy, n, &p) < 0);
                        TAP_CHECK(p.error < 0 && p.message[0] && p.n_tensors == 0);
                        plan_free(&p);
                        free(copy);
                }
        }
}

/* Every byte of data.pkl replaced by a handful of values: no crash, and any plan
 * made stays inside the file. */
static void corrupted_data_pkl_never_crashes(void) {
        static const uint8_t subst[] = { 0x00, 0xff, 'R', 'b', 'c', '(', 'h', 'Q', 0x80, 't', 'u', 'e', 0x95 };
        struct buf pkl = { 0 };

        state_dict_pickle(&pkl, false);
        for (size_t i = 0; i < pkl.len; i++)
                for (size_t k = 0; k < sizeof(subst); k++) {
                        struct buf z = { 0 };
                        struct plan p;
                        uint8_t save = pkl.p[i];
                        pkl.p[i] = subst[k];
                        torch_zip(&z, &pkl, NULL, NULL);
                        pkl.p[i] = save;
                        if (convert_plan_buffer(z.p, z.len, &p) == 0)
                                for (size_t t = 0; t < p.n_tensors; t++)
                                        TAP_CHECK(plan_tensor_check(&p.tensors[t], z.len) == NULL);
                        plan_free(&p);
                        free(z.p);
                }
}

/* ---- the evaluator's refusals ---- */

/* Evaluates a protocol-2 stream with body; returns the error text or NULL. */
static char errbuf[REPORT_MESSAGE_MAX];

static const char *eval_err(const void *body, size_t n, enum ts_mode mode) {
        struct buf b = { 0 };
        struct ts_value root;
        size_t used;
        struct ts_state *s = ts_new();
        int r;

        p_op(&b, '\x80');
        b_u8(&b, 2);
        b_put(&b, body, n);
        r = ts_eval(s, b.p, b.len, mode, &root, &used);
        snprintf(errbuf, sizeof(errbuf), "%s", ts_error(s));
        ts_free(s);
        free(b.p);
        return r < 0 ? errbuf : NULL;
}

#define EVAL_ERR(lit, mode) eval_err(lit, sizeof(lit) - 1, mode)

static void unsupported_opcodes_are_refused_by_name(void) {
        static const struct {
                const char *stream, *name;
        } cases[] = {
                { "I1\n.", "INT" }, { "L1L\n.", "LONG" }, { "F1.0\n.", "FLOAT" }, { "S'a'\n.", "STRING" },
                { "Va\n.", "UNICODE" }, { "N" "p0\n.", "PUT" }, { "g0\n.", "GET" }, { "P1\n.", "PERSID" },
                { "(ios\nsystem\n.", "INST" }, { "(o.", "OBJ" }, { "N)\x81.", "NEWOBJ" }, { "\x82\x01.", "EXT1" },
                { "\x83\x01\x00.", "EXT2" }, { "\x84\x01\x00\x00\x00.", "EXT4" }, { "\x8f.", "EMPTY_SET" },
                { "\x91.", "FROZENSET" }, { "\x97.", "NEXT_BUFFER" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *e = eval_err(cases[i].stream, strlen(cases[i].stream), TS_MODE_ZIP);
                if (!e || !strstr(e, cases[i].name)) {
                        fprintf(stderr, "# %s: %s\n", cases[i].name, e ? e : "(accepted)");
                        exit(1);
                }
        }
        TAP_CHECK(strstr(EVAL_ERR("\xff.", TS_MODE_ZIP), "invalid opcode 0xff"));
}

static void malformed_streams_are_refused(void) {
        static const struct {
                const char *stream;
                size_t len;
                const char *words;
        } cases[] = {
#define C(s, w) { s, sizeof(s) - 1, w }
                C("}K\x01" "a.", "APPEND to a dict"),
                C("]K\x01K\x02s.", "SETITEM on a list"),
                C("}}b.", "BUILD on a dict"),
                C("]}b.", "BUILD on a list"),
                C("K\x01)R.", "REDUCE calls an int"),
                C("h\x05.", "memo key 5 was never set"),
                C("](K\x01" "a.", "underflow"),
                C("K\x01K\x02\x93.", "STACK_GLOBAL operands are not str"),
                C("t.", "no MARK"),
                C("}(K\x01u.", "odd number"),
                C(".", "underflow"),
                C("\x80\x06.", "protocol 6"),
                C("\x95\x02\x00\x00\x00\x00\x00\x00\x00X\x05\x00\x00\x00hello.", "crosses the end of the frame"),
                C("\x95\x0a\x00\x00\x00\x00\x00\x00\x00\x95\x01\x00\x00\x00\x00\x00\x00\x00N.", "inside the previous frame"),
                C("\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", "FRAME longer"),
                C("}]K\x01s.", "unhashable"),
                C("ccollections\nOrderedDict\n(K\x01tR.", "OrderedDict called with initial items"),
                C("ctorch\nFloatStorage\n)R.", "storage class is called"),
                C("T\xff\xff\xff\xff.", "negative length"),
                C("\x8b\xff\xff\xff\xff.", "negative length"),
                C("X\xff\xff\xff\x7f.", "truncated"),
#undef C
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *e = eval_err(cases[i].stream, cases[i].len, TS_MODE_ZIP);
                if (!e || !strstr(e, cases[i].words)) {
                        fprintf(stderr, "# case %zu (%s): %s\n", i, cases[i].words, e ? e : "(accepted)");
                        exit(1);
                }
        }
}

static void values_decode_as_python_does(void) {
        struct ts_state *s = ts_new();
        struct ts_value root;
        size_t used;
        /* (LONG1 -1, LONG1 2^63 (9 bytes), BININT -5, LONG1 of 9 bytes that is small,
         *  SHORT_BINBYTES, NEWTRUE, POP of a MARK on top, DUP) */
        static const uint8_t s1[] = "\x80\x02(\x8a\x01\xff\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00"
                                    "J\xfb\xff\xff\xff\x8a\x09\x05\x00\x00\x00\x00\x00\x00\x00\x00"
                                    "C\x02hi\x88(0N2t.";
        TAP_CHECK(ts_eval(s, s1, sizeof(s1) - 1, TS_MODE_PLAIN, &root, &used) == 0);
        TAP_CHECK(root.kind == TS_TUPLE && root.seq->n == 8);
        TAP_CHECK(root.seq->v[0].kind == TS_INT && root.seq->v[0].i == -1);
        TAP_CHECK(root.seq->v[1].kind == TS_BIGINT);
        TAP_CHECK(root.seq->v[2].kind == TS_INT && root.seq->v[2].i == -5);
        TAP_CHECK(root.seq->v[3].kind == TS_INT && root.seq->v[3].i == 5);
        TAP_CHECK(root.seq->v[4].kind == TS_BYTES && root.seq->v[4].aux == 2);
        TAP_CHECK(root.seq->v[5].kind == TS_BOOL && root.seq->v[5].i == 1);
        TAP_CHECK(root.seq->v[6].kind == TS_NONE && root.seq->v[7].kind == TS_NONE);
        ts_free(s);
}

static const char *plan_err(const struct buf *pkl) {
        struct buf z = { 0 };
        struct plan p;
        int r;

        torch_zip(&z, pkl, NULL, NULL);
        r = convert_plan_buffer(z.p, z.len, &p);
        snprintf(errbuf, sizeof(errbuf), "%s", p.message);
        plan_free(&p);
        free(z.p);
        return r < 0 ? errbuf : NULL;
}

/* {key: tensor W, extra...} with `extra` appended inside the dict's SETITEMS. */
static void dict_with(struct buf *b, void (*extra)(struct buf *)) {
        p_op(b, '\x80');
        b_u8(b, 2);
        p_op(b, '}');
        p_op(b, '(');
        p_s(b, "w");
        p_tensor(b, &W);
        extra(b);
        p_op(b, 'u');
        p_op(b, '.');
}

static void x_os_system(struct buf *b) {
        p_s(b, "hook");
        p_global(b, "os", "system");
        p_s(b, "true");
        p_op(b, '\x85');
        p_op(b, 'R');
}

static void x_sparse(struct buf *b) {
        p_s(b, "sp");
        p_global(b, "torch._utils", "_rebuild_sparse_tensor");
        p_op(b, ')');
        p_op(b, 'R');
}

static void x_popped_global(struct buf *b) {
        p_global(b, "builtins", "eval");
        p_op(b, '0');
}

static void x_bool_key(struct buf *b) {
        p_op(b, '\x88');
        p_int(b, 1);
}

static void x_collision(struct buf *b) {
        p_s(b, "a.b");
        p_tensor(b, &B);
        p_s(b, "a");
        p_op(b, '}');
        p_s(b, "b");
        p_int(b, 5);
        p_op(b, 's');
}

static void x_bad_key(struct buf *b) {
        p_s(b, "bad\x01key");
        p_int(b, 1);
}

static void x_bare_storage(struct buf *b) {
        p_s(b, "st");
        p_op(b, '(');
        p_s(b, "storage");
        p_global(b, "torch", "FloatStorage");
        p_s(b, "0");
        p_s(b, "cpu");
        p_int(b, 6);
        p_op(b, 't');
        p_op(b, 'Q');
}

static void x_deep(struct buf *b) {
        p_s(b, "deep");
        for (int i = 0; i < 40; i++)
                p_op(b, ']');
        p_tensor(b, &B);
        for (int i = 0; i < 40; i++)
                p_op(b, 'a');
}

static void x_cycle(struct buf *b) {
        p_s(b, "loop");
        p_op(b, ']');
        p_put(b, 200);
        p_get(b, 200);
        p_op(b, 'a');
}

/* [x, x] nested 30 levels through the memo: 2^30 paths in a small pickle. */
static void x_dag(struct buf *b) {
        p_int(b, 1);
        p_put(b, 201);
        p_op(b, '0');
        for (int i = 0; i < 30; i++) {
                p_op(b, ']');
                p_op(b, '(');
                p_get(b, 201);
                p_get(b, 201);
                p_op(b, 'e');
                p_put(b, 201);
                p_op(b, '0');
        }
        p_s(b, "dag");
        p_get(b, 201);
}

/* One dict of 2000 entries (all the same key) reached 5000 times: little to
 * write, a lot to sort. */
static void x_wide_dag(struct buf *b) {
        p_op(b, '}');
        p_op(b, '(');
        for (int i = 0; i < 2000; i++) {
                p_s(b, "k");
                p_int(b, 1);
        }
        p_op(b, 'u');
        p_put(b, 202);
        p_op(b, '0');
        p_s(b, "wide");
        p_op(b, ']');
        p_op(b, '(');
        for (int i = 0; i < 5000; i++)
                p_get(b, 202);
        p_op(b, 'e');
}

static void x_long_name(struct buf *b) {
        char name[PLAN_NAME_MAX + 8];
        memset(name, 'n', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        p_s(b, name);
        p_int(b, 1);
}

static void x_quantized_storage(struct buf *b) {
        struct tdesc c = { "QInt32Storage", "1", 3, 0, 1, { 3 }, { 1 }, false };
        p_s(b, "z");
        p_tensor(b, &c);
}

static void refused_with(void (*extra)(struct buf *), const char *w1, const char *w2) {
        struct buf b = { 0 };
        const char *e;

        dict_with(&b, extra);
        e = plan_err(&b);
        if (!e || !strstr(e, w1) || (w2 && !strstr(e, w2))) {
                fprintf(stderr, "# expected '%s' and '%s' in: %s\n", w1, w2 ? w2 : "", e ? e : "(converted)");
                exit(1);
        }
        free(b.p);
}

static void foreign_globals_are_refused_naming_the_key(void) {
        refused_with(x_os_system, "'hook'", "os:system");
        refused_with(x_sparse, "'sp'", "a sparse tensor");
        refused_with(x_popped_global, "builtins:eval", "offset");
}

static void flattening_refusals_name_the_key(void) {
        refused_with(x_bool_key, "a bool", NULL);
        refused_with(x_collision, "'a.b'", "two values flatten");
        refused_with(x_bad_key, "not printable", NULL);
        refused_with(x_bare_storage, "'st'", "bare storage");
        refused_with(x_deep, "'deep", "nested more than");
        refused_with(x_cycle, "'loop", "nested more than");
        refused_with(x_dag, "entries to flatten", NULL);
        refused_with(x_wide_dag, "entries to flatten", NULL);
        refused_with(x_long_name, "longer than", NULL);
        refused_with(x_quantized_storage, "'z'", "QInt32Storage");
}

/* Persistent ids and tensor arguments that torch would reject or that do not
 * describe a stored tensor. */
static void bad_storages_and_tensors_are_refused(void) {
        static const struct {
                struct tdesc t;
                const char *words;
        } cases[] = {
                { { "FloatStorage", "0", 6, 1, 2, { 3, 2 }, { 2, 1 }, false }, "reads element 6" },
                { { "FloatStorage", "0", 6, 0, 2, { 3, 2 }, { 3, 1 }, false }, "reads element 7" },
                { { "FloatStorage", "0/x", 6, 0, 1, { 6 }, { 1 }, false }, "storage key" },
                { { "FloatStorage", "0", 6, 0, 9, { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, false }, "9 dimensions" },
                { { "OrderedDict", "0", 6, 0, 1, { 6 }, { 1 }, false }, "not a torch storage class" },
                { { "FloatStorage", "0", 6, 0, 1, { 6 }, { 1 }, true }, "5-item" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct buf b = { 0 };
                const char *e;
                p_op(&b, '\x80');
                b_u8(&b, 2);
                p_op(&b, '}');
                p_s(&b, "t");
                if (strcmp(cases[i].t.stype, "OrderedDict") == 0) {
                        /* A storage type that is an allowlisted global but not a storage. */
                        struct tdesc t = cases[i].t;
                        t.stype = "FloatStorage";
                        p_tensor(&b, &t);
                        char *at = memmem(b.p, b.len, "ctorch\nFloatStorage\n", 20);
                        TAP_CHECK(at);
                        size_t pos = (size_t) ((uint8_t *) at - b.p);
                        struct buf c = { 0 };
                        b_put(&c, b.p, pos);
                        p_global(&c, "collections", "OrderedDict");
                        b_put(&c, b.p + pos + 20, b.len - pos - 20);
                        free(b.p);
                        b = c;
                } else
                        p_tensor(&b, &cases[i].t);
                p_op(&b, 's');
                p_op(&b, '.');
                e = plan_err(&b);
                if (!e || !strstr(e, cases[i].words)) {
                        fprintf(stderr, "# case %zu (%s): %s\n", i, cases[i].words, e ? e : "(converted)");
                        exit(1);
                }
                free(b.p);
        }
        /* Storage "0" declared again as another type. */
        {
                struct buf b = { 0 };
                struct tdesc d = { "DoubleStorage", "0", 6, 0, 1, { 6 }, { 1 }, false };
                p_op(&b, '\x80');
                b_u8(&b, 2);
                p_op(&b, '}');
                p_op(&b, '(');
                p_s(&b, "a");
                p_tensor(&b, &W);
                p_s(&b, "b");
                p_tensor(&b, &d);
                p_op(&b, 'u');
                p_op(&b, '.');
                TAP_CHECK(strstr(plan_err(&b), "declared again"));
                free(b.p);
        }
        /* A storage whose zip record is missing, and one of the wrong size. */
        {
                struct buf b = { 0 };
                struct tdesc m = { "FloatStorage", "7", 6, 0, 1, { 6 }, { 1 }, false };
                struct tdesc s = { "FloatStorage", "1", 4, 0, 1, { 4 }, { 1 }, false };
                p_op(&b, '\x80');
                b_u8(&b, 2);
                p_op(&b, '}');
                p_s(&b, "m");
                p_tensor(&b, &m);
                p_op(&b, 's');
                p_op(&b, '.');
                TAP_CHECK(strstr(plan_err(&b), "has no archive/data/7 record"));
                free(b.p);
                b = (struct buf) { 0 };
                p_op(&b, '\x80');
                b_u8(&b, 2);
                p_op(&b, '}');
                p_s(&b, "s");
                p_tensor(&b, &s);
                p_op(&b, 's');
                p_op(&b, '.');
                TAP_CHECK(strstr(plan_err(&b), "holds 12 bytes; the pickle declares 16"));
                free(b.p);
        }
}

static void extra_zip_members_are_refused(void) {
        struct buf pkl = { 0 }, z = { 0 };
        struct plan p;

        state_dict_pickle(&pkl, false);
        struct member m[] = {
                { "archive/data.pkl", pkl.p, pkl.len },
                { "archive/data/0", (const uint8_t *) w_data, sizeof(w_data) },
                { "archive/data/1", (const uint8_t *) b_data, sizeof(b_data) },
                { "archive/.data/version", (const uint8_t *) "3\n", 2 },
                { "archive/data.txt", pkl.p, pkl.len },
        };
        zip_build(&z, m, 4, NULL);
        TAP_CHECK(convert_plan_buffer(z.p, z.len, &p) == 0);   /* .data/version is torch's */
        plan_free(&p);
        free(z.p);
        z = (struct buf) { 0 };
        zip_build(&z, m, 5, NULL);
        TAP_CHECK(convert_plan_buffer(z.p, z.len, &p) < 0);
        TAP_CHECK(strstr(p.message, "'archive/data.txt' is not a record torch.save writes"));
        plan_free(&p);
        free(z.p);
        free(pkl.p);
}

/* ---- tied weights ---- */

static void shared_storage_is_merged_like_save_model(void) {
        struct buf b = { 0 };
        struct buf z = { 0 };
        struct plan p;

        /* {"enc": W, "dec": the same tensor through the memo, "half": W's first row,
         * "row2a"/"row2b": two identical views of the bias storage's tail} */
        struct tdesc half = { "FloatStorage", "0", 6, 0, 1, { 2 }, { 1 }, false };
        struct tdesc tail = { "FloatStorage", "1", 3, 1, 1, { 2 }, { 1 }, false };
        p_op(&b, '\x80');
        b_u8(&b, 2);
        p_op(&b, '}');
        p_op(&b, '(');
        p_s(&b, "enc");
        p_tensor(&b, &W);
        p_put(&b, 50);
        p_s(&b, "dec");
        p_get(&b, 50);
        p_s(&b, "half");
        p_tensor(&b, &half);
        p_s(&b, "row2b");
        p_tensor(&b, &tail);
        p_s(&b, "row2a");
        p_tensor(&b, &tail);
        p_op(&b, 'u');
        p_op(&b, '.');
        torch_zip(&z, &b, NULL, NULL);
        TAP_CHECK(convert_plan_buffer(z.p, z.len, &p) == 0);
        /* W's group: dec and enc both cover the storage; "dec" sorts first. */
        TAP_CHECK(p.n_tensors == 2 && find_tensor(&p, "dec") && find_tensor(&p, "row2a"));
        TAP_CHECK_STR(find_meta(&p, PM_TIED, "enc"), "dec");
        TAP_CHECK_STR(find_meta(&p, PM_TIED, "half"), "dec");
        TAP_CHECK_STR(find_meta(&p, PM_TIED, "row2b"), "row2a");
        plan_free(&p);
        free(b.p);
        free(z.p);
}

static void duplicate_keys_keep_the_last_value(void) {
        struct buf b = { 0 };
        struct buf z = { 0 };
        struct plan p;

        p_op(&b, '\x80');
        b_u8(&b, 2);
        p_op(&b, '}');
        p_op(&b, '(');
        p_s(&b, "k");
        p_int(&b, 1);
        p_s(&b, "k");
        p_tensor(&b, &W);
        p_int(&b, 7);
        p_tensor(&b, &B);
        p_int(&b, 7);
        p_s(&b, "after");
        p_op(&b, 'u');
        p_op(&b, '.');
        torch_zip(&z, &b, NULL, NULL);
        TAP_CHECK(convert_plan_buffer(z.p, z.len, &p) == 0);
        TAP_CHECK(p.n_tensors == 1 && find_tensor(&p, "k"));
        TAP_CHECK_STR(find_meta(&p, PM_VALUE, "7"), "\"after\"");
        TAP_CHECK(!find_meta(&p, PM_VALUE, "k"));
        plan_free(&p);
        free(b.p);
        free(z.p);
}

/* ---- the front end's checks ---- */

static struct plan_tensor good_tensor(void) {
        struct plan_tensor t;
        memset(&t, 0, sizeof(t));
        snprintf(t.name, sizeof(t.name), "w");
        t.dtype = PD_F32;
        t.ndim = 2;
        t.shape[0] = 3;
        t.shape[1] = 2;
        t.stride[0] = 2;
        t.stride[1] = 1;
        t.storage_start = 100;
        t.storage_len = 24;
        return t;
}

static void plan_tensor_check_refuses_out_of_range(void) {
        struct plan_tensor t = good_tensor();
        TAP_CHECK(plan_tensor_check(&t, 124) == NULL);
        TAP_CHECK(plan_tensor_check(&t, 123));                       /* storage past the input */
        t = good_tensor(), t.storage_offset = 1;
        TAP_CHECK(plan_tensor_check(&t, 1000));                      /* reads past the storage */
        t = good_tensor(), t.stride[0] = 3;
        TAP_CHECK(plan_tensor_check(&t, 1000));
        t = good_tensor(), t.dtype = _PD_MAX;
        TAP_CHECK(plan_tensor_check(&t, 1000));
        t = good_tensor(), t.shape[5] = 1;
        TAP_CHECK(plan_tensor_check(&t, 1000));                      /* unused dimension set */
        t = good_tensor(), t.ndim = PLAN_DIMS_MAX + 1;
        TAP_CHECK(plan_tensor_check(&t, 1000));
        t = good_tensor(), memset(t.name, 'a', sizeof(t.name));
        TAP_CHECK(plan_tensor_check(&t, 1000));                      /* unterminated */
        t = good_tensor(), snprintf(t.name, sizeof(t.name), "a\nb");
        TAP_CHECK(plan_tensor_check(&t, 1000));
        t = good_tensor(), snprintf(t.name, sizeof(t.name), "__metadata__");
        TAP_CHECK(plan_tensor_check(&t, 1000));
        t = good_tensor(), t.storage_start = UINT64_MAX - 4;
        TAP_CHECK(plan_tensor_check(&t, UINT64_MAX));                /* wraps */
        t = good_tensor(), t.shape[0] = UINT64_MAX / 2;
        TAP_CHECK(plan_tensor_check(&t, UINT64_MAX));
        t = good_tensor(), t.shape[0] = 0, t.storage_offset = UINT64_MAX;
        TAP_CHECK(plan_tensor_check(&t, 1000) == NULL);              /* empty: reads nothing */
}

static void msg_init(struct wp_msg *m, uint32_t type, uint64_t job) {
        memset(m, 0, sizeof(*m));
        m->magic = WORKER_MAGIC;
        m->type = type;
        m->job = job;
}

static void plan_receiver_rejects_violations(void) {
        struct plan p;
        struct plan_receiver rx;
        struct wp_msg m;

        plan_init(&p);
        plan_receiver_start(&rx, 9, 1000, &p);
        msg_init(&m, WP_PLAN_TENSOR, 9);
        m.u.plan_tensor = good_tensor();
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m)) == 0);
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m) - 1) == -EBADMSG);   /* size */
        m.job = 8;
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m)) == -EBADMSG);       /* job */
        msg_init(&m, WP_PLAN_META, 9);
        m.u.plan_meta.kind = PM_VALUE;
        snprintf(m.u.plan_meta.key, sizeof(m.u.plan_meta.key), "source_sha256");
        snprintf(m.u.plan_meta.value, sizeof(m.u.plan_meta.value), "\"0\"");
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m)) == -EBADMSG);       /* reserved key */
        snprintf(m.u.plan_meta.key, sizeof(m.u.plan_meta.key), "epoch");
        m.u.plan_meta.kind = _PM_MAX;
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m)) == -EBADMSG);       /* kind */
        m.u.plan_meta.kind = PM_VALUE;
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m)) == 0);
        msg_init(&m, WP_PLAN_TENSOR, 9);
        m.u.plan_tensor = good_tensor();
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m)) == -EBADMSG);       /* tensor after meta */
        msg_init(&m, WP_PLAN_DONE, 9);
        m.u.plan_done.n_tensors = 2;
        m.u.plan_done.n_meta = 1;
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m)) == -EBADMSG);       /* counts */
        m.u.plan_done.n_tensors = 1;
        m.u.plan_done.format = _FMT_MAX;
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m)) == -EBADMSG);
        m.u.plan_done.format = FMT_PYTORCH_ZIP;
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m)) == 1);
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m)) == -EBADMSG);       /* after done */
        msg_init(&m, WP_DONE, 9);
        plan_receiver_start(&rx, 9, 1000, &p);
        TAP_CHECK(plan_receiver_feed(&rx, &m, sizeof(m)) == -EBADMSG);       /* a report message */
        plan_free(&p);

        /* And the report receiver takes no plan message. */
        struct scan_report *r = malloc(sizeof(*r));
        struct wp_receiver wrx;
        wp_receiver_start(&wrx, 9, r);
        msg_init(&m, WP_PLAN_TENSOR, 9);
        m.u.plan_tensor = good_tensor();
        TAP_CHECK(wp_receiver_feed(&wrx, &m, sizeof(m)) == -EBADMSG);
        free(r);
}

/* ---- writing ---- */

static char tmpdir[] = "/tmp/test-convert-XXXXXX";

static int write_file(const char *path, const void *data, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        TAP_CHECK(fd >= 0);
        TAP_CHECK(write(fd, data, n) == (ssize_t) n);
        close(fd);
        return 0;
}

static uint8_t *read_file(const char *path, size_t *ret_len) {
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        TAP_CHECK(fd >= 0 && fstat(fd, &st) == 0);
        uint8_t *d = malloc((size_t) st.st_size + 1);
        TAP_CHECK(read(fd, d, (size_t) st.st_size) == st.st_size);
        close(fd);
        *ret_len = (size_t) st.st_size;
        return d;
}

/* A plan over an input of 64 float32 values 0..63: a contiguous slice, a
 * transposed 4x3, a stepped view, a broadcast, and an int16 scalar. */
static void writes_valid_safetensors_gathering_strided_tensors(void) {
        float in[64];
        char src[64], dst[64], err[CONVERT_ERROR_MAX] = "";
        struct plan p;
        struct convert_layout l;
        struct convert_out o;
        int fd;

        TAP_CHECK(mkdtemp(tmpdir));
        for (int i = 0; i < 64; i++)
                in[i] = (float) i;
        snprintf(src, sizeof(src), "%s/in", tmpdir);
        snprintf(dst, sizeof(dst), "%s/out.safetensors", tmpdir);
        write_file(src, in, sizeof(in));
        plan_init(&p);
        p.format = FMT_PYTORCH_ZIP;
        struct plan_tensor t = good_tensor();
        t.storage_start = 0, t.storage_len = sizeof(in);
        snprintf(t.name, sizeof(t.name), "slice"), t.ndim = 1, t.shape[0] = 5, t.shape[1] = 0, t.stride[0] = 1,
                t.stride[1] = 0, t.storage_offset = 10;
        TAP_CHECK(plan_add_tensor(&p, &t) == 0);
        t = good_tensor(), t.storage_start = 0, t.storage_len = sizeof(in);
        snprintf(t.name, sizeof(t.name), "transposed"), t.shape[0] = 4, t.shape[1] = 3, t.stride[0] = 1, t.stride[1] = 4;
        TAP_CHECK(plan_add_tensor(&p, &t) == 0);
        t = good_tensor(), t.storage_start = 0, t.storage_len = sizeof(in);
        snprintf(t.name, sizeof(t.name), "stepped"), t.shape[0] = 2, t.shape[1] = 3, t.stride[0] = 16, t.stride[1] = 5,
                t.storage_offset = 1;
        TAP_CHECK(plan_add_tensor(&p, &t) == 0);
        t = good_tensor(), t.storage_start = 0, t.storage_len = sizeof(in);
        snprintf(t.name, sizeof(t.name), "expanded"), t.shape[0] = 3, t.shape[1] = 2, t.stride[0] = 0, t.stride[1] = 1,
                t.storage_offset = 62;
        TAP_CHECK(plan_add_tensor(&p, &t) == 0);
        t = good_tensor(), t.storage_start = 8, t.storage_len = 2, t.dtype = PD_I16, t.ndim = 0;
        memset(t.shape, 0, sizeof(t.shape)), memset(t.stride, 0, sizeof(t.stride));
        snprintf(t.name, sizeof(t.name), "scalar \"q\\");
        TAP_CHECK(plan_add_tensor(&p, &t) == 0);
        TAP_CHECK(plan_add_meta(&p, PM_VALUE, "epoch", "3") == 0);
        TAP_CHECK(plan_add_meta(&p, PM_TIED, "other", "slice") == 0);
        TAP_CHECK(plan_add_meta(&p, PM_DROPPED, "gone", "bytes") == 0);

        TAP_CHECK(convert_layout(&p, "x", "apache-2.0", &l, err, sizeof(err)) == 0);
        TAP_CHECK(l.header_len % 8 == 0);
        TAP_CHECK(convert_out_open(dst, &o, err, sizeof(err)) == 0);
        fd = open(src, O_RDONLY | O_CLOEXEC);
        TAP_CHECK(convert_copy_data(fd, &p, &l, &o, err, sizeof(err)) == 0);
        convert_set_sha256(&l, "abababababababababababababababababababababababababababababababab");
        TAP_CHECK(convert_out_commit(&o, &l, dst, false, err, sizeof(err)) == 0);
        convert_out_abort(&o);
        close(fd);

        size_t n;
        uint8_t *out = read_file(dst, &n);
        struct scan_report *r = malloc(sizeof(*r));
        report_init(r);
        scan_buffer(r, out, n);
        TAP_CHECK(r->format == FMT_SAFETENSORS);
        if (r->n_findings)
                fprintf(stderr, "# %s\n", r->findings[0].message);
        TAP_CHECK(r->n_findings == 0);
        TAP_CHECK(r->has_license && strcmp(r->license, "apache-2.0") == 0);
        TAP_CHECK(memmem(out, l.header_len, "\"source_sha256\":\"abab", 21));
        TAP_CHECK(memmem(out, l.header_len, "\"other\":\"slice\"", 15));
        TAP_CHECK(!memmem(out, l.header_len, "gone", 4));
        TAP_CHECK(memmem(out, l.header_len, "\"scalar \\\"q\\\\\"", 14));

        /* Data order: float32 tensors by name, then the int16 scalar. */
        const float *d = (const float *) (out + l.header_len);
        static const float expanded[] = { 62, 63, 62, 63, 62, 63 };
        static const float slice[] = { 10, 11, 12, 13, 14 };
        static const float stepped[] = { 1, 6, 11, 17, 22, 27 };
        static const float transposed[] = { 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11 };
        TAP_CHECK(memcmp(d, expanded, sizeof(expanded)) == 0);
        d += 6;
        TAP_CHECK(memcmp(d, slice, sizeof(slice)) == 0);
        d += 5;
        TAP_CHECK(memcmp(d, stepped, sizeof(stepped)) == 0);
        d += 6;
        TAP_CHECK(memcmp(d, transposed, sizeof(transposed)) == 0);
        d += 12;
        TAP_CHECK(memcmp(d, (const uint8_t *) in + 8, 2) == 0);
        TAP_CHECK(n == l.header_len + 29 * 4 + 2);

        /* Without --force an existing output is never replaced. */
        TAP_CHECK(convert_out_open(dst, &o, err, sizeof(err)) == 0);
        fd = open(src, O_RDONLY | O_CLOEXEC);
        TAP_CHECK(convert_copy_data(fd, &p, &l, &o, err, sizeof(err)) == 0);
        TAP_CHECK(convert_out_commit(&o, &l, dst, false, err, sizeof(err)) == -EEXIST);
        convert_out_abort(&o);
        TAP_CHECK(convert_out_open(dst, &o, err, sizeof(err)) == 0);
        TAP_CHECK(convert_copy_data(fd, &p, &l, &o, err, sizeof(err)) == 0);
        TAP_CHECK(convert_out_commit(&o, &l, dst, true, err, sizeof(err)) == 0);
        close(fd);

        /* An input that shrank since the plan: the copy fails. */
        write_file(src, in, 16);
        fd = open(src, O_RDONLY | O_CLOEXEC);
        TAP_CHECK(convert_out_open(dst, &o, err, sizeof(err)) == 0);
        err[0] = '\0';
        TAP_CHECK(convert_copy_data(fd, &p, &l, &o, err, sizeof(err)) < 0);
        TAP_CHECK(strstr(err, "ended early") || strstr(err, "copying"));
        convert_out_abort(&o);
        close(fd);

        DIR *dir = opendir(tmpdir);
        struct dirent *de;
        int files = 0;
        while ((de = readdir(dir)))
                files += de->d_name[0] != '.' || strncmp(de->d_name, ".modelgate", 10) == 0;
        closedir(dir);
        TAP_CHECK(files == 2);   /* in, out.safetensors: no temporaries left */
        free(out);
        free(r);
        convert_layout_free(&l);
        plan_free(&p);
        unlink(src);
        unlink(dst);
        rmdir(tmpdir);
}

static void layout_refuses_clashes(void) {
        struct plan p;
        struct convert_layout l;
        char err[CONVERT_ERROR_MAX];
        struct plan_tensor t = good_tensor();

        plan_init(&p);
        TAP_CHECK(plan_add_tensor(&p, &t) == 0);
        t.dtype = PD_F64, t.storage_len = 48;
        TAP_CHECK(plan_add_tensor(&p, &t) == 0);
        TAP_CHECK(convert_layout(&p, "x", NULL, &l, err, sizeof(err)) == -EINVAL && strstr(err, "same name"));
        plan_free(&p);

        t = good_tensor();
        TAP_CHECK(plan_add_tensor(&p, &t) == 0);
        TAP_CHECK(plan_add_meta(&p, PM_VALUE, "k", "1") == 0);
        TAP_CHECK(plan_add_meta(&p, PM_TIED, "k", "w") == 0);
        TAP_CHECK(convert_layout(&p, "x", NULL, &l, err, sizeof(err)) == -EINVAL && strstr(err, "twice"));
        plan_free(&p);

        t = good_tensor(), t.name[0] = '\0';
        TAP_CHECK(plan_add_tensor(&p, &t) == 0);
        TAP_CHECK(convert_layout(&p, "__metadata__", NULL, &l, err, sizeof(err)) == -EINVAL);
        snprintf(t.name, sizeof(t.name), "b");
        TAP_CHECK(plan_add_tensor(&p, &t) == 0);
        TAP_CHECK(convert_layout(&p, "x", NULL, &l, err, sizeof(err)) == -EINVAL && strstr(err, "unnamed"));
        plan_free(&p);

        /* A strided tensor over more storage than the gather takes. */
        t = good_tensor(), t.shape[0] = 2, t.shape[1] = 2, t.stride[0] = CONVERT_GATHER_MAX, t.stride[1] = 1;
        t.storage_len = UINT64_MAX / 2;
        TAP_CHECK(plan_add_tensor(&p, &t) == 0);
        TAP_CHECK(convert_layout(&p, "x", NULL, &l, err, sizeof(err)) == -EINVAL && strstr(err, "gathers"));
        plan_free(&p);
}

/* ---- npy ---- */

static void npy_bytes(struct buf *b, const char *dict, const void *data, size_t n) {
        char hdr[256];
        size_t hl = (size_t) snprintf(hdr, sizeof(hdr), "%s", dict);
        while ((10 + hl + 1) % 64)
                hdr[hl++] = ' ';
        hdr[hl++] = '\n';
        b_put(b, "\x93NUMPY\x01\x00", 8);
        b_le(b, hl, 2);
        b_put(b, hdr, hl);
        b_put(b, data, n);
}

static void npy_arrays_plan_as_numpy_reads_them(void) {
        static const int32_t data[6] = { 1, 2, 3, 4, 5, 6 };
        struct buf b = { 0 };
        struct plan p;

        npy_bytes(&b, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", data, sizeof(data));
        TAP_CHECK(convert_plan_buffer(b.p, b.len, &p) == 0 && p.format == FMT_NPY && p.n_tensors == 1);
        TAP_CHECK(p.tensors[0].dtype == PD_I32 && p.tensors[0].stride[0] == 1 && p.tensors[0].stride[1] == 2);
        TAP_CHECK(!plan_tensor_contiguous(&p.tensors[0]) && p.tensors[0].name[0] == '\0');
        TAP_CHECK(p.tensors[0].storage_start == b.len - sizeof(data) && plan_tensor_check(&p.tensors[0], b.len) == NULL);
        plan_free(&p);
        for (size_t n = 0; n < b.len; n++) {
                uint8_t *copy = malloc(n ? n : 1);
                memcpy(copy, b.p, n);
                TAP_CHECK(convert_plan_buffer(copy, n, &p) < 0);
                plan_free(&p);
                free(copy);
        }
        free(b.p);

        static const struct {
                const char *dict, *words;
        } bad[] = {
                { "{'descr': '>i4', 'fortran_order': False, 'shape': (6,), }", "'>i4'" },
                { "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", "'<c8'" },
                { "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", "object array" },
                { "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (6,), }", "structured" },
                { "{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }", "needs 28 bytes" },
                { "{'descr': '<i4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,6), }", "dimensions" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                b = (struct buf) { 0 };
                npy_bytes(&b, bad[i].dict, data, sizeof(data));
                TAP_CHECK(convert_plan_buffer(b.p, b.len, &p) < 0);
                if (!strstr(p.message, bad[i].words)) {
                        fprintf(stderr, "# %s: %s\n", bad[i].words, p.message);
                        exit(1);
                }
                plan_free(&p);
                free(b.p);
        }
}

/* ---- the repository's hostile fixtures ---- */

static void walk_malicious(const char *dir, int *count, int *bad) {
        DIR *d = opendir(dir);
        struct dirent *de;
        if (!d)
                return;
        while ((de = readdir(d))) {
                char path[4096];
                struct stat st;
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                if (stat(path, &st) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        walk_malicious(path, count, bad);
                        continue;
                }
                size_t n;
                uint8_t *data = read_file(path, &n);
                struct plan p;
                (*count)++;
                if (convert_plan_buffer(data, n, &p) == 0) {
                        fprintf(stderr, "# converted: %s\n", path);
                        (*bad)++;
                }
                plan_free(&p);
                free(data);
        }
        closedir(d);
}

static void malicious_fixtures_are_refused_by_the_converter_itself(void) {
        const char *fx = getenv("FIXTURES");
        char dir[4096];
        int count = 0, bad = 0;

        if (!fx)
                exit(77);
        snprintf(dir, sizeof(dir), "%s/malicious", fx);
        walk_malicious(dir, &count, &bad);
        if (count == 0)
                exit(77);   /* not generated yet */
        fprintf(stderr, "# %d malicious fixtures\n", count);
        TAP_CHECK(bad == 0);
}

TAP_MAIN(TAP_CASE(zip_state_dict_converts),
         TAP_CASE(legacy_state_dict_converts),
         TAP_CASE(truncated_data_pkl_at_every_byte_fails),
         TAP_CASE(truncated_files_at_every_byte_fail),
         TAP_CASE(corrupted_data_pkl_never_crashes),
         TAP_CASE(unsupported_opcodes_are_refused_by_name),
         TAP_CASE(malformed_streams_are_refused),
         TAP_CASE(values_decode_as_python_does),
         TAP_CASE(foreign_globals_are_refused_naming_the_key),
         TAP_CASE(flattening_refusals_name_the_key),
         TAP_CASE(bad_storages_and_tensors_are_refused),
         TAP_CASE(extra_zip_members_are_refused),
         TAP_CASE(shared_storage_is_merged_like_save_model),
         TAP_CASE(duplicate_keys_keep_the_last_value),
         TAP_CASE(plan_tensor_check_refuses_out_of_range),
         TAP_CASE(plan_receiver_rejects_violations),
         TAP_CASE(writes_valid_safetensors_gathering_strided_tensors),
         TAP_CASE(layout_refuses_clashes),
         TAP_CASE(npy_arrays_plan_as_numpy_reads_them),
         TAP_CASE(malicious_fixtures_are_refused_by_the_converter_itself))
