/* torch-state.h — an allowlist-only pickle evaluator for PyTorch checkpoints. It
 * builds the object tree torch.load would return (dicts, lists, tuples, scalars,
 * strings, tensors on storages) from the opcodes and globals torch.save emits,
 * without executing or importing anything. Every other global becomes an opaque
 * "foreign" value that the caller must refuse; every other opcode is an error. */
#ifndef MODELGATE_TORCH_STATE_H
#define MODELGATE_TORCH_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convert-plan.h"

/* Dimensions of a tensor the evaluator accepts (see PLAN_DIMS_MAX). */
#define TS_DIMS_MAX PLAN_DIMS_MAX

enum ts_kind {
        TS_NONE,
        TS_BOOL,
        TS_INT,
        TS_BIGINT,      /* LONG1/LONG4 beyond 64 bits: s/len hold the little-endian bytes */
        TS_FLOAT,
        TS_STR,         /* s/len: the UTF-8 bytes as stored (not yet validated) */
        TS_BYTES,
        TS_TUPLE,
        TS_LIST,
        TS_DICT,        /* seq holds key, value, key, value, … in insertion order */
        TS_TENSOR,
        TS_STORAGE,
        TS_CALLABLE,    /* an allowlisted global, not called */
        TS_FOREIGN,     /* made from a global outside the allowlist; aux: its index */
};

/* How a checkpoint names its storages in persistent ids. */
enum ts_mode {
        TS_MODE_ZIP,     /* ('storage', type, key, location, numel) */
        TS_MODE_LEGACY,  /* ('storage', type, root_key, location, numel, view_metadata) */
        TS_MODE_PLAIN,   /* no persistent ids allowed (the legacy format's other pickles) */
};

struct ts_seq;
struct ts_tensor;
struct ts_storage;

struct ts_value {
        uint8_t kind;           /* enum ts_kind */
        uint8_t flags;          /* TS_DICT: TS_DICT_ORDERED */
        uint16_t reserved;
        uint32_t aux;           /* TS_STR/TS_BYTES/TS_BIGINT: length; TS_CALLABLE: which;
                                 * TS_FOREIGN: index of the global */
        union {
                int64_t i;
                double f;
                const uint8_t *s;
                struct ts_seq *seq;
                struct ts_tensor *t;
                struct ts_storage *st;
        };
};

#define TS_DICT_ORDERED 0x1

struct ts_seq {
        uint32_t n, cap;        /* values held (a dict holds 2 per entry) */
        struct ts_value *v;
};

struct ts_storage {
        const uint8_t *key;     /* inside the pickle buffer */
        uint32_t key_len;
        int8_t dtype;           /* enum plan_dtype, or -1 when safetensors has none */
        uint8_t elsize;
        const char *type_name;  /* "FloatStorage" … */
        uint64_t numel;         /* elements of its dtype */
        uint64_t nbytes;
        struct ts_storage *root;   /* a legacy view's storage; a root's is itself */
        uint64_t view_offset;      /* bytes into root */
        /* Filled in by the caller once the data is located in the file. */
        uint64_t file_offset;
        bool located;
        struct ts_storage *next_root;
};

struct ts_tensor {
        struct ts_storage *st;
        uint64_t offset;        /* elements */
        uint8_t ndim;
        bool parameter;
        uint64_t shape[TS_DIMS_MAX];
        uint64_t stride[TS_DIMS_MAX];
};

struct ts_state;

/* Limits the evaluator enforces are named in torch-state.c; a file that reaches
 * one is refused with a message naming it. */

/* A new evaluator. Storages persist across ts_eval() calls on one state (the
 * legacy format's data pickle declares them, its keys pickle lists them). */
struct ts_state *ts_new(void);
void ts_free(struct ts_state *s);

/* Evaluates one pickle stream at the start of [buf, buf+len) under `mode`.
 * Returns 0 with *ret_root and *ret_consumed (bytes through STOP), or -EINVAL
 * (ts_error() says what and where), -ENOMEM. Values stay valid until ts_free()
 * and point into buf. */
int ts_eval(struct ts_state *s, const uint8_t *buf, size_t len, enum ts_mode mode,
            struct ts_value *ret_root, size_t *ret_consumed);

const char *ts_error(const struct ts_state *s);

/* Globals outside the allowlist seen so far, and the name ("module:qualname") and
 * what it would build ("a sparse tensor" or NULL) of foreign value i. */
size_t ts_foreign_count(const struct ts_state *s);
const char *ts_foreign_name(const struct ts_state *s, size_t i);
const char *ts_foreign_what(const struct ts_state *s, size_t i);
size_t ts_foreign_offset(const struct ts_state *s, size_t i);

/* Root storages in order of first declaration; a legacy storage by key. */
struct ts_storage *ts_storages(const struct ts_state *s);
struct ts_storage *ts_storage_find(const struct ts_state *s, const uint8_t *key, size_t key_len);

/* The value an int or bool holds, when it fits. */
static inline bool ts_small_int(const struct ts_value *v, int64_t *ret) {
        if (v->kind != TS_INT && v->kind != TS_BOOL)
                return false;
        *ret = v->i;
        return true;
}

#endif
