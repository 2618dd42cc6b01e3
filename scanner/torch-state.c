/* torch-state.c — evaluates the pickle of a PyTorch state dict into a tree of
 * values, understanding only the binary opcodes and the reconstruction globals
 * torch.save emits (a superset of torch's own weights_only unpickler, read as
 * CPython's C unpickler reads: mark fences, memo, frames). It never imports or
 * calls anything; it only checks arguments. Runs inside the sandboxed worker. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torch-state.h"

/* Limits. Every one is far above what a real checkpoint needs and keeps the
 * worker's memory under its RLIMIT_DATA; reaching one refuses the file. */
#define TS_STACK_MAX     (1u << 22)   /* values on the stack; pickles batch by 1000 */
#define TS_MARKS_MAX     (1u << 16)   /* open MARKs; real pickles nest a few deep */
#define TS_MEMO_MAX      (1u << 22)   /* highest memo index + 1: ~5 per tensor */
#define TS_ITEMS_MAX     (1u << 23)   /* values held by all containers together (128 MiB) */
#define TS_SEQS_MAX      (1u << 22)   /* containers: ~5 per tensor (args, size, stride, id, hooks) */
#define TS_TENSORS_MAX   (1u << 19)   /* tensors built, before duplicates are merged */
#define TS_STORAGES_MAX  (1u << 19)   /* storages (and legacy views) declared */
#define TS_FOREIGN_KEEP  64           /* foreign globals remembered by name */
#define TS_KEY_MAX       64           /* a storage key: torch writes decimal numbers */
#define TS_GLOBAL_MAX    256          /* bytes of a module or qualname line */
#define TS_ARENA_BLOCK   ((size_t) 1 << 20)
#define TS_HIGHEST_PROTOCOL 5

#define TS_UNSET 0xff   /* kind of an empty memo slot */

enum ts_callable {
        C_ORDERED_DICT,
        C_REBUILD_TENSOR_V2,
        C_REBUILD_TENSOR,
        C_REBUILD_PARAMETER,
        C_TORCH_SIZE,
        C_STORAGE_TYPE,         /* + index into storage_types[] */
};

/* torch's storage classes: torch._utils._element_size of each, and the
 * safetensors dtype when there is one (complex and quantized have none). */
static const struct {
        const char *name;
        int8_t dtype;
        uint8_t elsize;
} storage_types[] = {
        { "DoubleStorage", PD_F64, 8 },       { "FloatStorage", PD_F32, 4 },
        { "HalfStorage", PD_F16, 2 },         { "BFloat16Storage", PD_BF16, 2 },
        { "LongStorage", PD_I64, 8 },         { "IntStorage", PD_I32, 4 },
        { "ShortStorage", PD_I16, 2 },        { "CharStorage", PD_I8, 1 },
        { "ByteStorage", PD_U8, 1 },          { "BoolStorage", PD_BOOL, 1 },
        { "UntypedStorage", PD_U8, 1 },       { "ComplexFloatStorage", -1, 8 },
        { "ComplexDoubleStorage", -1, 16 },   { "QInt8Storage", -1, 1 },
        { "QUInt8Storage", -1, 1 },           { "QInt32Storage", -1, 4 },
        { "QUInt4x2Storage", -1, 1 },         { "QUInt2x4Storage", -1, 1 },
};
#define N_STORAGE_TYPES (sizeof(storage_types) / sizeof(storage_types[0]))

static const struct {
        const char *module, *name;
        enum ts_callable what;
} allowed[] = {
        { "collections", "OrderedDict", C_ORDERED_DICT },
        { "torch._utils", "_rebuild_tensor_v2", C_REBUILD_TENSOR_V2 },
        { "torch._utils", "_rebuild_tensor", C_REBUILD_TENSOR },
        { "torch._utils", "_rebuild_parameter", C_REBUILD_PARAMETER },
        { "torch", "Size", C_TORCH_SIZE },
};

/* Globals torch uses for tensors the converter cannot write: refused like any
 * foreign global, with a message saying what they are. */
static const struct {
        const char *module, *name, *what;
} known_unsupported[] = {
        { "torch._utils", "_rebuild_sparse_tensor", "a sparse tensor" },
        { "torch._utils", "_rebuild_sparse_csr_tensor", "a sparse CSR tensor" },
        { "torch._utils", "_rebuild_qtensor", "a quantized tensor" },
        { "torch._utils", "_rebuild_nested_tensor", "a nested tensor" },
        { "torch._utils", "_rebuild_meta_tensor_no_storage", "a meta tensor (it has no data)" },
        { "torch._utils", "_rebuild_device_tensor_from_numpy", "a tensor of a device without storage" },
        { "torch._utils", "_rebuild_xla_tensor", "an XLA tensor" },
        { "torch._utils", "_rebuild_mlc_tensor", "an MLC tensor" },
        { "torch._utils", "_rebuild_wrapper_subclass", "a tensor subclass" },
        { "torch._utils", "_rebuild_parameter_with_state", "a parameter with Python attributes" },
        { "torch._tensor", "_rebuild_from_type", "a tensor subclass or a tensor with Python attributes" },
        { "torch._tensor", "_rebuild_from_type_v2", "a tensor subclass or a tensor with Python attributes" },
        { "torch", "Tensor", "a tensor rebuilt by BUILD (pre-1.0 layout)" },
        { "torch.nn.parameter", "Parameter", "a parameter built by its class" },
};

struct foreign {
        char name[2 * TS_GLOBAL_MAX + 2];
        const char *what;
        size_t offset;
};

struct arena_block {
        struct arena_block *next;
        size_t used;
        _Alignas(16) uint8_t data[];
};

struct ts_state {
        /* One stream. */
        const uint8_t *buf;
        size_t len, pos, frame_end;
        enum ts_mode mode;
        struct ts_value *stack;
        size_t n_stack, cap_stack;
        size_t *marks;
        size_t n_marks, cap_marks, fence;
        struct ts_value *memo;
        size_t cap_memo, memo_count;

        /* Everything built, kept until ts_free(). */
        struct ts_seq **seqs;
        size_t n_seqs, cap_seqs;
        size_t items_total;
        size_t n_tensors;
        struct arena_block *arena;
        struct ts_storage **table;    /* open addressing by key: roots and views */
        size_t table_cap, n_storages;
        struct ts_storage *roots, *roots_tail;
        struct foreign foreign[TS_FOREIGN_KEEP];
        size_t n_foreign;
        char error[REPORT_MESSAGE_MAX];
};

/* ---- errors -------------------------------------------------------------- */

static int ts_fail(struct ts_state *s, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int ts_fail(struct ts_state *s, size_t at, const char *fmt, ...) {
        char what[REPORT_MESSAGE_MAX - 48];
        va_list ap;

        if (!s->error[0]) {
                va_start(ap, fmt);
                vsnprintf(what, sizeof(what), fmt, ap);
                va_end(ap);
                snprintf(s->error, sizeof(s->error), "pickle at offset %zu: %s", at, what);
        }
        return -EINVAL;
}

const char *ts_error(const struct ts_state *s) {
        return s->error[0] ? s->error : "no error";
}

static const char *kind_name(uint8_t kind) {
        switch (kind) {
        case TS_NONE: return "None";
        case TS_BOOL: return "a bool";
        case TS_INT: case TS_BIGINT: return "an int";
        case TS_FLOAT: return "a float";
        case TS_STR: return "a str";
        case TS_BYTES: return "bytes";
        case TS_TUPLE: return "a tuple";
        case TS_LIST: return "a list";
        case TS_DICT: return "a dict";
        case TS_TENSOR: return "a tensor";
        case TS_STORAGE: return "a storage";
        case TS_CALLABLE: return "a class or function";
        case TS_FOREIGN: return "a foreign object";
        default: return "nothing";
        }
}

/* ---- memory ---------------------------------------------------------------- */

static void *arena_alloc(struct ts_state *s, size_t n) {
        struct arena_block *b = s->arena;

        n = (n + 15) & ~(size_t) 15;
        if (!b || TS_ARENA_BLOCK - offsetof(struct arena_block, data) - b->used < n) {
                b = malloc(TS_ARENA_BLOCK);
                if (!b)
                        return NULL;
                b->used = 0;
                b->next = s->arena;
                s->arena = b;
        }
        void *p = b->data + b->used;
        b->used += n;
        memset(p, 0, n);
        return p;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem, size_t max) {
        if (need <= *cap)
                return 0;
        if (need > max)
                return -E2BIG;
        size_t nc = *cap ? *cap : 64;
        while (nc < need)
                nc *= 2;
        if (nc > max)
                nc = max;
        void *a = realloc(*arr, nc * elem);
        if (!a)
                return -ENOMEM;
        *arr = a;
        *cap = nc;
        return 0;
}

static int oom(struct ts_state *s, int r, const char *what, size_t limit) {
        if (r == -ENOMEM) {
                ts_fail(s, s->pos, "out of memory (%s)", what);
                return -ENOMEM;
        }
        return ts_fail(s, s->pos, "%s exceeds the converter's limit of %zu", what, limit);
}

static struct ts_seq *seq_new(struct ts_state *s) {
        struct ts_seq *q;
        int r;

        if ((r = grow((void **) &s->seqs, &s->cap_seqs, s->n_seqs + 1, sizeof(*s->seqs), TS_SEQS_MAX)) < 0) {
                oom(s, r, "number of containers", TS_SEQS_MAX);
                return NULL;
        }
        q = arena_alloc(s, sizeof(*q));
        if (!q) {
                oom(s, -ENOMEM, "containers", 0);
                return NULL;
        }
        s->seqs[s->n_seqs++] = q;
        return q;
}

/* Appends n values to q. The first fill is allocated exactly (most containers
 * are small tuples filled once); later growth doubles. */
static int seq_extend(struct ts_state *s, struct ts_seq *q, const struct ts_value *v, size_t n) {
        size_t need = (size_t) q->n + n;

        if (n > TS_ITEMS_MAX - s->items_total)
                return oom(s, -E2BIG, "values held in containers", TS_ITEMS_MAX);
        if (need > q->cap) {
                size_t nc = q->cap ? (size_t) q->cap * 2 : 4;
                if (nc < need)
                        nc = need;
                if (nc > UINT32_MAX)
                        return oom(s, -E2BIG, "container size", UINT32_MAX);
                struct ts_value *a = realloc(q->v, nc * sizeof(*a));
                if (!a)
                        return oom(s, -ENOMEM, "containers", 0);
                q->v = a;
                q->cap = (uint32_t) nc;
        }
        if (n)
                memcpy(q->v + q->n, v, n * sizeof(*v));
        q->n += (uint32_t) n;
        s->items_total += n;
        return 0;
}

struct ts_state *ts_new(void) {
        return calloc(1, sizeof(struct ts_state));
}

void ts_free(struct ts_state *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_seqs; i++)
                free(s->seqs[i]->v);
        free(s->seqs);
        while (s->arena) {
                struct arena_block *b = s->arena;
                s->arena = b->next;
                free(b);
        }
        free(s->table);
        free(s->stack);
        free(s->marks);
        free(s->memo);
        free(s);
}

/* ---- storages by key ------------------------------------------------------------ */

static uint64_t key_hash(const uint8_t *k, size_t n) {
        uint64_t h = 0xcbf29ce484222325u;
        for (size_t i = 0; i < n; i++)
                h = (h ^ k[i]) * 0x100000001b3u;
        return h;
}

struct ts_storage *ts_storage_find(const struct ts_state *s, const uint8_t *key, size_t key_len) {
        if (!s->table_cap)
                return NULL;
        for (size_t i = key_hash(key, key_len) & (s->table_cap - 1);; i = (i + 1) & (s->table_cap - 1)) {
                struct ts_storage *st = s->table[i];
                if (!st)
                        return NULL;
                if (st->key_len == key_len && memcmp(st->key, key, key_len) == 0)
                        return st;
        }
}

static int table_insert(struct ts_state *s, struct ts_storage *st) {
        if (s->n_storages >= TS_STORAGES_MAX)
                return oom(s, -E2BIG, "number of storages", TS_STORAGES_MAX);
        if ((s->n_storages + 1) * 2 > s->table_cap) {
                size_t nc = s->table_cap ? s->table_cap * 2 : 256;
                struct ts_storage **t = calloc(nc, sizeof(*t));
                if (!t)
                        return oom(s, -ENOMEM, "storages", 0);
                for (size_t i = 0; i < s->table_cap; i++) {
                        struct ts_storage *o = s->table[i];
                        if (!o)
                                continue;
                        size_t j = key_hash(o->key, o->key_len) & (nc - 1);
                        while (t[j])
                                j = (j + 1) & (nc - 1);
                        t[j] = o;
                }
                free(s->table);
                s->table = t;
                s->table_cap = nc;
        }
        size_t j = key_hash(st->key, st->key_len) & (s->table_cap - 1);
        while (s->table[j])
                j = (j + 1) & (s->table_cap - 1);
        s->table[j] = st;
        s->n_storages++;
        return 0;
}

struct ts_storage *ts_storages(const struct ts_state *s) {
        return s->roots;
}

size_t ts_foreign_count(const struct ts_state *s) {
        return s->n_foreign;
}

const char *ts_foreign_name(const struct ts_state *s, size_t i) {
        return i < TS_FOREIGN_KEEP && i < s->n_foreign ? s->foreign[i].name : "(a global)";
}

const char *ts_foreign_what(const struct ts_state *s, size_t i) {
        return i < TS_FOREIGN_KEEP && i < s->n_foreign ? s->foreign[i].what : NULL;
}

size_t ts_foreign_offset(const struct ts_state *s, size_t i) {
        return i < TS_FOREIGN_KEEP && i < s->n_foreign ? s->foreign[i].offset : 0;
}

/* ---- reading, with CPython's frames --------------------------------------------- */

/* n bytes at the cursor. A read that crosses the end of a frame is where loaders
 * disagree (see pickle.c): refused. */
static int need(struct ts_state *s, size_t n, const uint8_t **ret) {
        if (s->frame_end && s->pos < s->frame_end && n > s->frame_end - s->pos)
                return ts_fail(s, s->pos, "a read of %zu bytes crosses the end of the frame at %zu", n, s->frame_end);
        if (s->frame_end && s->pos >= s->frame_end)
                s->frame_end = 0;
        if (n > s->len - s->pos)
                return ts_fail(s, s->pos, "the pickle is truncated");
        *ret = s->buf + s->pos;
        s->pos += n;
        return 0;
}

static int need_line(struct ts_state *s, const uint8_t **ret, size_t *ret_len) {
        const uint8_t *start = s->buf + s->pos;
        const uint8_t *nl = memchr(start, '\n', s->len - s->pos);
        size_t n;

        if (!nl)
                return ts_fail(s, s->pos, "the pickle is truncated (no end of line)");
        n = (size_t) (nl - start);
        if (n > TS_GLOBAL_MAX)
                return ts_fail(s, s->pos, "a %zu-byte name line, longer than the %d the converter reads", n, TS_GLOBAL_MAX);
        int r = need(s, n + 1, ret);
        if (r < 0)
                return r;
        *ret_len = n;
        return 0;
}

static uint64_t le(const uint8_t *p, size_t n) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
                v |= (uint64_t) p[i] << (8 * i);
        return v;
}

/* ---- the stack ----------------------------------------------------------------- */

static int push(struct ts_state *s, struct ts_value v) {
        int r = grow((void **) &s->stack, &s->cap_stack, s->n_stack + 1, sizeof(*s->stack), TS_STACK_MAX);
        if (r < 0)
                return oom(s, r, "stack depth", TS_STACK_MAX);
        s->stack[s->n_stack++] = v;
        return 0;
}

static int pop(struct ts_state *s, size_t at, struct ts_value *ret) {
        if (s->n_stack <= s->fence)
                return ts_fail(s, at, "stack underflow");
        *ret = s->stack[--s->n_stack];
        return 0;
}

static struct ts_value *top(struct ts_state *s, size_t at) {
        if (s->n_stack <= s->fence) {
                ts_fail(s, at, "stack underflow");
                return NULL;
        }
        return &s->stack[s->n_stack - 1];
}

/* Pops to the last MARK; returns the index of the first value above it. */
static int pop_mark(struct ts_state *s, size_t at, size_t *ret) {
        if (s->n_marks == 0)
                return ts_fail(s, at, "no MARK to pop to");
        *ret = s->marks[--s->n_marks];
        s->fence = s->n_marks ? s->marks[s->n_marks - 1] : 0;
        return 0;
}

static int make_seq(struct ts_state *s, enum ts_kind kind, const struct ts_value *items, size_t n,
                    struct ts_value *ret) {
        struct ts_seq *q = seq_new(s);
        if (!q)
                return -EINVAL;
        if (n && seq_extend(s, q, items, n) < 0)
                return -EINVAL;
        *ret = (struct ts_value) { .kind = (uint8_t) kind, .seq = q };
        return 0;
}

/* ---- imports ------------------------------------------------------------------- */

static bool bytes_eq(const uint8_t *s, size_t n, const char *lit) {
        return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static int import(struct ts_state *s, size_t at, const uint8_t *m, size_t ml, const uint8_t *n, size_t nl,
                  struct ts_value *ret) {
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
                if (bytes_eq(m, ml, allowed[i].module) && bytes_eq(n, nl, allowed[i].name)) {
                        *ret = (struct ts_value) { .kind = TS_CALLABLE, .aux = allowed[i].what };
                        return 0;
                }
        if (bytes_eq(m, ml, "torch"))
                for (size_t i = 0; i < N_STORAGE_TYPES; i++)
                        if (bytes_eq(n, nl, storage_types[i].name)) {
                                *ret = (struct ts_value) { .kind = TS_CALLABLE, .aux = C_STORAGE_TYPE + (uint32_t) i };
                                return 0;
                        }

        /* Outside the allowlist: remembered, and opaque from here on. */
        size_t idx = s->n_foreign++;
        if (idx < TS_FOREIGN_KEEP) {
                struct foreign *f = &s->foreign[idx];
                char mod[TS_GLOBAL_MAX + 1], name[TS_GLOBAL_MAX + 1];
                report_escape(mod, sizeof(mod), m, ml, ":");
                report_escape(name, sizeof(name), n, nl, ":");
                snprintf(f->name, sizeof(f->name), "%s:%s", mod, name);
                f->offset = at;
                f->what = NULL;
                for (size_t i = 0; i < sizeof(known_unsupported) / sizeof(known_unsupported[0]); i++)
                        if (bytes_eq(m, ml, known_unsupported[i].module) && bytes_eq(n, nl, known_unsupported[i].name))
                                f->what = known_unsupported[i].what;
        }
        *ret = (struct ts_value) { .kind = TS_FOREIGN, .aux = (uint32_t) (idx < UINT32_MAX ? idx : UINT32_MAX) };
        return 0;
}

/* ---- persistent ids: torch's storages --------------------------------------------- */

static bool str_value(const struct ts_value *v, const char *lit) {
        return (v->kind == TS_STR || v->kind == TS_BYTES) && bytes_eq(v->s, v->aux, lit);
}

static bool key_ok(const struct ts_value *v) {
        if (v->kind != TS_STR || v->aux == 0 || v->aux > TS_KEY_MAX)
                return false;
        for (size_t i = 0; i < v->aux; i++) {
                uint8_t c = v->s[i];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
                        return false;
        }
        return true;
}

static int int_arg(struct ts_state *s, size_t at, const struct ts_value *v, const char *what, uint64_t *ret) {
        if (v->kind != TS_INT || v->i < 0)
                return ts_fail(s, at, "%s is %s, not a non-negative int", what, v->kind == TS_INT ? "negative" : kind_name(v->kind));
        *ret = (uint64_t) v->i;
        return 0;
}

static int new_storage(struct ts_state *s, size_t at, const struct ts_value *key, size_t type, uint64_t numel,
                       struct ts_storage **ret) {
        struct ts_storage *st;
        uint64_t nbytes;

        if (__builtin_mul_overflow(numel, (uint64_t) storage_types[type].elsize, &nbytes))
                return ts_fail(s, at, "storage size overflows 64 bits");
        st = arena_alloc(s, sizeof(*st));
        if (!st)
                return oom(s, -ENOMEM, "storages", 0);
        st->key = key->s;
        st->key_len = key->aux;
        st->dtype = storage_types[type].dtype;
        st->elsize = storage_types[type].elsize;
        st->type_name = storage_types[type].name;
        st->numel = numel;
        st->nbytes = nbytes;
        st->root = st;
        int r = table_insert(s, st);
        if (r < 0)
                return r;
        *ret = st;
        return 0;
}

static void add_root(struct ts_state *s, struct ts_storage *st) {
        if (s->roots_tail)
                s->roots_tail->next_root = st;
        else
                s->roots = st;
        s->roots_tail = st;
}

static int persistent_load(struct ts_state *s, size_t at, const struct ts_value *pid, struct ts_value *ret) {
        const struct ts_value *it;
        size_t want = s->mode == TS_MODE_ZIP ? 5 : 6, type;
        uint64_t numel = 0;
        struct ts_storage *st;
        int r;

        if (s->mode == TS_MODE_PLAIN)
                return ts_fail(s, at, "a persistent id outside the data pickle");
        if (pid->kind != TS_TUPLE)
                return ts_fail(s, at, "persistent id is %s, not a tuple", kind_name(pid->kind));
        it = pid->seq->v;
        if (pid->seq->n >= 1 && str_value(&it[0], "module"))
                return ts_fail(s, at, "the checkpoint saves a whole module (its class and source), not a state dict");
        if (pid->seq->n != want || !str_value(&it[0], "storage"))
                return ts_fail(s, at, "persistent id is not a %zu-item ('storage', …) tuple", want);
        if (it[1].kind != TS_CALLABLE || it[1].aux < C_STORAGE_TYPE)
                return ts_fail(s, at, "persistent id names %s, not a torch storage class", kind_name(it[1].kind));
        type = it[1].aux - C_STORAGE_TYPE;
        if (!key_ok(&it[2]))
                return ts_fail(s, at, "storage key is not 1 to %d letters, digits or '_'", TS_KEY_MAX);
        if (it[3].kind != TS_STR && it[3].kind != TS_BYTES)
                return ts_fail(s, at, "storage location is %s, not a str", kind_name(it[3].kind));
        if ((r = int_arg(s, at, &it[4], "storage size", &numel)) < 0)
                return r;

        st = ts_storage_find(s, it[2].s, it[2].aux);
        if (st) {
                /* torch keeps the first declaration; two that disagree are refused. */
                if (st->root != st)
                        return ts_fail(s, at, "storage key '%.*s' names a view", (int) it[2].aux, it[2].s);
                if (st->type_name != storage_types[type].name || st->numel != numel)
                        return ts_fail(s, at, "storage '%.*s' is declared again with another type or size (%s of %llu, then %s of %llu)",
                                       (int) it[2].aux, it[2].s, st->type_name, (unsigned long long) st->numel,
                                       storage_types[type].name, (unsigned long long) numel);
        } else {
                if ((r = new_storage(s, at, &it[2], type, numel, &st)) < 0)
                        return r;
                add_root(s, st);
        }

        if (s->mode == TS_MODE_LEGACY && it[5].kind != TS_NONE) {
                /* view_metadata: (view_key, offset, size), in elements of the dtype. */
                const struct ts_value *vm = &it[5];
                uint64_t off = 0, size = 0, off_b, size_b, end;
                struct ts_storage *view;

                if (vm->kind != TS_TUPLE || vm->seq->n != 3 || !key_ok(&vm->seq->v[0]))
                        return ts_fail(s, at, "storage view metadata is not a (key, offset, size) tuple");
                if ((r = int_arg(s, at, &vm->seq->v[1], "view offset", &off)) < 0 ||
                    (r = int_arg(s, at, &vm->seq->v[2], "view size", &size)) < 0)
                        return r;
                if (__builtin_mul_overflow(off, (uint64_t) st->elsize, &off_b) ||
                    __builtin_mul_overflow(size, (uint64_t) st->elsize, &size_b) ||
                    __builtin_add_overflow(off_b, size_b, &end) || end > st->nbytes)
                        return ts_fail(s, at, "storage view of %llu elements at %llu lies outside its storage of %llu",
                                       (unsigned long long) size, (unsigned long long) off, (unsigned long long) st->numel);
                view = ts_storage_find(s, vm->seq->v[0].s, vm->seq->v[0].aux);
                if (view) {
                        if (view->root != st || view->view_offset != off_b || view->nbytes != size_b || view == st)
                                return ts_fail(s, at, "storage view '%.*s' is declared again differently",
                                               (int) vm->seq->v[0].aux, vm->seq->v[0].s);
                } else {
                        if ((r = new_storage(s, at, &vm->seq->v[0], type, size, &view)) < 0)
                                return r;
                        view->root = st;
                        view->view_offset = off_b;
                }
                st = view;
        } else if (s->mode == TS_MODE_LEGACY && st->root != st)
                return ts_fail(s, at, "storage key names a view");

        *ret = (struct ts_value) { .kind = TS_STORAGE, .st = st };
        return 0;
}

/* ---- calls ------------------------------------------------------------------------ */

static int dims_arg(struct ts_state *s, size_t at, const struct ts_value *v, const char *what, uint64_t out[TS_DIMS_MAX],
                    size_t *ret_n) {
        if (v->kind != TS_TUPLE && v->kind != TS_LIST)
                return ts_fail(s, at, "tensor %s is %s, not a tuple", what, kind_name(v->kind));
        if (v->seq->n > TS_DIMS_MAX)
                return ts_fail(s, at, "tensor of %u dimensions; the converter takes at most %d", v->seq->n, TS_DIMS_MAX);
        for (size_t i = 0; i < v->seq->n; i++) {
                int r = int_arg(s, at, &v->seq->v[i], what, &out[i]);
                if (r < 0)
                        return r;
        }
        *ret_n = v->seq->n;
        return 0;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]) and _rebuild_tensor(storage, offset, size, stride). */
static int rebuild_tensor(struct ts_state *s, size_t at, const struct ts_value *args, bool v2, struct ts_value *ret) {
        const struct ts_value *a = args->seq->v;
        size_t n = args->seq->n, nd, ns;
        struct ts_tensor *t;
        uint64_t numel = 1, last = 0;
        int r;

        if (v2 ? (n != 6 && n != 7) : n != 4)
                return ts_fail(s, at, "%s takes %s arguments, not %zu", v2 ? "_rebuild_tensor_v2" : "_rebuild_tensor",
                               v2 ? "6" : "4", n);
        if (a[0].kind != TS_STORAGE)
                return ts_fail(s, at, "tensor storage is %s, not a storage", kind_name(a[0].kind));
        if (s->n_tensors >= TS_TENSORS_MAX)
                return oom(s, -E2BIG, "number of tensors", TS_TENSORS_MAX);
        t = arena_alloc(s, sizeof(*t));
        if (!t)
                return oom(s, -ENOMEM, "tensors", 0);
        s->n_tensors++;
        t->st = a[0].st;
        if ((r = int_arg(s, at, &a[1], "storage offset", &t->offset)) < 0 ||
            (r = dims_arg(s, at, &a[2], "size", t->shape, &nd)) < 0 ||
            (r = dims_arg(s, at, &a[3], "stride", t->stride, &ns)) < 0)
                return r;
        if (nd != ns)
                return ts_fail(s, at, "tensor size has %zu dimensions and stride %zu", nd, ns);
        t->ndim = (uint8_t) nd;
        if (v2) {
                if (a[4].kind != TS_BOOL)
                        return ts_fail(s, at, "requires_grad is %s, not a bool", kind_name(a[4].kind));
                if (a[5].kind != TS_DICT && a[5].kind != TS_NONE)
                        return ts_fail(s, at, "backward hooks are %s, not a dict", kind_name(a[5].kind));
                if (n == 7 && a[6].kind != TS_NONE && !(a[6].kind == TS_DICT && a[6].seq->n == 0))
                        return ts_fail(s, at, "tensor metadata (conjugate or negative bits) is not supported");
        }
        /* torch's set_() bounds check: the highest element read lies in the storage. */
        for (size_t i = 0; i < nd; i++)
                if (__builtin_mul_overflow(numel, t->shape[i], &numel))
                        return ts_fail(s, at, "tensor size overflows 64 bits");
        if (numel > 0) {
                for (size_t i = 0; i < nd; i++) {
                        uint64_t span;
                        if (__builtin_mul_overflow(t->shape[i] - 1, t->stride[i], &span) ||
                            __builtin_add_overflow(last, span, &last))
                                return ts_fail(s, at, "tensor extent overflows 64 bits");
                }
                if (__builtin_add_overflow(last, t->offset, &last) || last >= t->st->numel)
                        return ts_fail(s, at, "tensor reads element %llu of a storage of %llu",
                                       (unsigned long long) last, (unsigned long long) t->st->numel);
        }
        *ret = (struct ts_value) { .kind = TS_TENSOR, .t = t };
        return 0;
}

static int call(struct ts_state *s, size_t at, const struct ts_value *fn, const struct ts_value *args,
                struct ts_value *ret) {
        if (fn->kind == TS_FOREIGN) {
                *ret = *fn;   /* whatever it builds is as foreign as the global */
                return 0;
        }
        if (fn->kind != TS_CALLABLE)
                return ts_fail(s, at, "REDUCE calls %s", kind_name(fn->kind));
        if (args->kind != TS_TUPLE)
                return ts_fail(s, at, "REDUCE arguments are %s, not a tuple", kind_name(args->kind));
        switch (fn->aux) {
        case C_ORDERED_DICT:
                if (args->seq->n != 0)
                        return ts_fail(s, at, "OrderedDict called with initial items");
                if (make_seq(s, TS_DICT, NULL, 0, ret) < 0)
                        return -EINVAL;
                ret->flags = TS_DICT_ORDERED;
                return 0;
        case C_REBUILD_TENSOR_V2:
        case C_REBUILD_TENSOR:
                return rebuild_tensor(s, at, args, fn->aux == C_REBUILD_TENSOR_V2, ret);
        case C_REBUILD_PARAMETER:
                if (args->seq->n != 3 || args->seq->v[0].kind != TS_TENSOR || args->seq->v[1].kind != TS_BOOL ||
                    (args->seq->v[2].kind != TS_DICT && args->seq->v[2].kind != TS_NONE))
                        return ts_fail(s, at, "_rebuild_parameter takes (tensor, bool, hooks)");
                *ret = args->seq->v[0];
                ret->t->parameter = true;
                return 0;
        case C_TORCH_SIZE: {
                const struct ts_value *d = args->seq->n == 1 ? &args->seq->v[0] : NULL;
                if (!d || (d->kind != TS_TUPLE && d->kind != TS_LIST))
                        return ts_fail(s, at, "torch.Size takes one tuple");
                for (size_t i = 0; i < d->seq->n; i++)
                        if (d->seq->v[i].kind != TS_INT)
                                return ts_fail(s, at, "torch.Size of %s", kind_name(d->seq->v[i].kind));
                return make_seq(s, TS_TUPLE, d->seq->v, d->seq->n, ret);
        }
        default:
                return ts_fail(s, at, "a storage class is called");
        }
}

/* ---- the opcode loop ---------------------------------------------------------------- */

static int memo_put(struct ts_state *s, size_t at, uint64_t idx) {
        struct ts_value *v = top(s, at);
        size_t old = s->cap_memo;
        int r;

        if (!v)
                return -EINVAL;
        if (idx >= TS_MEMO_MAX)
                return ts_fail(s, at, "memo index %llu exceeds the converter's limit of %u", (unsigned long long) idx, TS_MEMO_MAX);
        if ((r = grow((void **) &s->memo, &s->cap_memo, (size_t) idx + 1, sizeof(*s->memo), TS_MEMO_MAX)) < 0)
                return oom(s, r, "memo", TS_MEMO_MAX);
        for (size_t i = old; i < s->cap_memo; i++)
                s->memo[i].kind = TS_UNSET;
        if (s->memo[idx].kind == TS_UNSET)
                s->memo_count++;
        s->memo[idx] = *v;
        return 0;
}

static int memo_get(struct ts_state *s, size_t at, uint64_t idx) {
        if (idx >= s->cap_memo || s->memo[idx].kind == TS_UNSET)
                return ts_fail(s, at, "memo key %llu was never set", (unsigned long long) idx);
        return push(s, s->memo[idx]);
}

/* An int from LONG1/LONG4 bytes: int64 when it fits, else kept as bytes. */
static struct ts_value long_value(const uint8_t *p, size_t n) {
        if (n == 0)
                return (struct ts_value) { .kind = TS_INT, .i = 0 };
        bool neg = p[n - 1] & 0x80;
        size_t sig = n;
        /* Drop sign-extension bytes beyond 8. */
        while (sig > 8 && p[sig - 1] == (neg ? 0xff : 0x00) && ((p[sig - 2] & 0x80) != 0) == neg)
                sig--;
        if (sig > 8)
                return (struct ts_value) { .kind = TS_BIGINT, .aux = (uint32_t) (n < UINT32_MAX ? n : UINT32_MAX), .s = p };
        uint64_t v = le(p, sig);
        if (sig < 8 && neg)
                v |= ~(uint64_t) 0 << (8 * sig);
        return (struct ts_value) { .kind = TS_INT, .i = (int64_t) v };
}

static int string_value(struct ts_state *s, size_t at, enum ts_kind kind, uint64_t n, struct ts_value *ret) {
        const uint8_t *p;
        int r;

        if (n >= UINT32_MAX)
                return ts_fail(s, at, "a %llu-byte string exceeds the converter's limit", (unsigned long long) n);
        if ((r = need(s, (size_t) n, &p)) < 0)
                return r;
        *ret = (struct ts_value) { .kind = (uint8_t) kind, .aux = (uint32_t) n, .s = p };
        return 0;
}

static int step(struct ts_state *s, bool *ret_stop, struct ts_value *ret_root) {
        size_t at = s->pos, start;
        const uint8_t *p;
        struct ts_value a, b, *t;
        uint8_t op;
        int r;

        if ((r = need(s, 1, &p)) < 0)
                return r;
        op = p[0];
        switch (op) {
        case '(':       /* MARK */
                if ((r = grow((void **) &s->marks, &s->cap_marks, s->n_marks + 1, sizeof(*s->marks), TS_MARKS_MAX)) < 0)
                        return oom(s, r, "open MARKs", TS_MARKS_MAX);
                s->marks[s->n_marks++] = s->n_stack;
                s->fence = s->n_stack;
                return 0;
        case '.':       /* STOP */
                if ((r = pop(s, at, ret_root)) < 0)
                        return r;
                *ret_stop = true;
                return 0;
        case '0':       /* POP: a value, or the MARK right on top (CPython) */
                if (s->n_marks > 0 && s->marks[s->n_marks - 1] == s->n_stack) {
                        s->n_marks--;
                        s->fence = s->n_marks ? s->marks[s->n_marks - 1] : 0;
                        return 0;
                }
                return pop(s, at, &a);
        case '1':       /* POP_MARK */
                if ((r = pop_mark(s, at, &start)) < 0)
                        return r;
                s->n_stack = start;
                return 0;
        case '2':       /* DUP */
                if (!(t = top(s, at)))
                        return -EINVAL;
                return push(s, *t);
        case 'N':
                return push(s, (struct ts_value) { .kind = TS_NONE });
        case 0x88:      /* NEWTRUE */
        case 0x89:      /* NEWFALSE */
                return push(s, (struct ts_value) { .kind = TS_BOOL, .i = op == 0x88 });
        case 'J':       /* BININT */
                if ((r = need(s, 4, &p)) < 0)
                        return r;
                return push(s, (struct ts_value) { .kind = TS_INT, .i = (int32_t) (uint32_t) le(p, 4) });
        case 'K':       /* BININT1 */
        case 'M':       /* BININT2 */
                if ((r = need(s, op == 'K' ? 1 : 2, &p)) < 0)
                        return r;
                return push(s, (struct ts_value) { .kind = TS_INT, .i = (int64_t) le(p, op == 'K' ? 1 : 2) });
        case 0x8a:      /* LONG1 */
        case 0x8b: {    /* LONG4 */
                uint64_t n;
                if ((r = need(s, op == 0x8a ? 1 : 4, &p)) < 0)
                        return r;
                n = op == 0x8a ? p[0] : le(p, 4);
                if (op == 0x8b && (int32_t) n < 0)
                        return ts_fail(s, at, "LONG4 with a negative length");
                if ((r = need(s, (size_t) n, &p)) < 0)
                        return r;
                return push(s, long_value(p, (size_t) n));
        }
        case 'G': {     /* BINFLOAT, big-endian */
                uint64_t bits = 0;
                double d;
                if ((r = need(s, 8, &p)) < 0)
                        return r;
                for (int i = 0; i < 8; i++)
                        bits = bits << 8 | p[i];
                memcpy(&d, &bits, sizeof(d));
                return push(s, (struct ts_value) { .kind = TS_FLOAT, .f = d });
        }
        case 'X':       /* BINUNICODE */
        case 'T':       /* BINSTRING: torch.load decodes it as UTF-8 */
        case 'B':       /* BINBYTES */
                if ((r = need(s, 4, &p)) < 0)
                        return r;
                if (op == 'T' && (int32_t) le(p, 4) < 0)
                        return ts_fail(s, at, "BINSTRING with a negative length");
                if ((r = string_value(s, at, op == 'B' ? TS_BYTES : TS_STR, le(p, 4), &a)) < 0)
                        return r;
                return push(s, a);
        case 0x8c:      /* SHORT_BINUNICODE */
        case 'U':       /* SHORT_BINSTRING */
        case 'C':       /* SHORT_BINBYTES */
                if ((r = need(s, 1, &p)) < 0)
                        return r;
                if ((r = string_value(s, at, op == 'C' ? TS_BYTES : TS_STR, p[0], &a)) < 0)
                        return r;
                return push(s, a);
        case 0x8d:      /* BINUNICODE8 */
        case 0x8e:      /* BINBYTES8 */
                if ((r = need(s, 8, &p)) < 0)
                        return r;
                if ((r = string_value(s, at, op == 0x8e ? TS_BYTES : TS_STR, le(p, 8), &a)) < 0)
                        return r;
                return push(s, a);
        case ')':       /* EMPTY_TUPLE */
        case ']':       /* EMPTY_LIST */
        case '}':       /* EMPTY_DICT */
                if (make_seq(s, op == ')' ? TS_TUPLE : op == ']' ? TS_LIST : TS_DICT, NULL, 0, &a) < 0)
                        return -EINVAL;
                return push(s, a);
        case 't':       /* TUPLE */
        case 'l':       /* LIST */
        case 'd':       /* DICT */
                if ((r = pop_mark(s, at, &start)) < 0)
                        return r;
                if (op == 'd' && (s->n_stack - start) % 2)
                        return ts_fail(s, at, "DICT with an odd number of values");
                if (make_seq(s, op == 't' ? TS_TUPLE : op == 'l' ? TS_LIST : TS_DICT, s->stack + start,
                             s->n_stack - start, &a) < 0)
                        return -EINVAL;
                s->n_stack = start;
                return push(s, a);
        case 0x85:      /* TUPLE1 */
        case 0x86:      /* TUPLE2 */
        case 0x87: {    /* TUPLE3 */
                size_t k = (size_t) (op - 0x84);
                if (s->n_stack - s->fence < k)
                        return ts_fail(s, at, "stack underflow");
                if (make_seq(s, TS_TUPLE, s->stack + s->n_stack - k, k, &a) < 0)
                        return -EINVAL;
                s->n_stack -= k;
                return push(s, a);
        }
        case 'a':       /* APPEND */
                if ((r = pop(s, at, &a)) < 0 || !(t = top(s, at)))
                        return r < 0 ? r : -EINVAL;
                if (t->kind == TS_FOREIGN)
                        return 0;
                if (t->kind != TS_LIST)
                        return ts_fail(s, at, "APPEND to %s", kind_name(t->kind));
                return seq_extend(s, t->seq, &a, 1);
        case 'e':       /* APPENDS */
                if ((r = pop_mark(s, at, &start)) < 0)
                        return r;
                if (start == 0 || start - 1 < s->fence)
                        return ts_fail(s, at, "stack underflow");
                t = &s->stack[start - 1];
                if (t->kind != TS_LIST && t->kind != TS_FOREIGN)
                        return ts_fail(s, at, "APPENDS to %s", kind_name(t->kind));
                if (t->kind == TS_LIST && (r = seq_extend(s, t->seq, s->stack + start, s->n_stack - start)) < 0)
                        return r;
                s->n_stack = start;
                return 0;
        case 's':       /* SETITEM */
        case 'u': {     /* SETITEMS */
                struct ts_value pair[2];
                const struct ts_value *items;
                size_t n;
                if (op == 's') {
                        if ((r = pop(s, at, &pair[1])) < 0 || (r = pop(s, at, &pair[0])) < 0)
                                return r;
                        if (!(t = top(s, at)))
                                return -EINVAL;
                        items = pair;
                        n = 2;
                        start = s->n_stack;
                } else {
                        if ((r = pop_mark(s, at, &start)) < 0)
                                return r;
                        if (start == 0 || start - 1 < s->fence)
                                return ts_fail(s, at, "stack underflow");
                        t = &s->stack[start - 1];
                        items = s->stack + start;
                        n = s->n_stack - start;
                        if (n % 2)
                                return ts_fail(s, at, "SETITEMS with an odd number of values");
                }
                if (t->kind != TS_DICT && t->kind != TS_FOREIGN)
                        return ts_fail(s, at, "SETITEM on %s", kind_name(t->kind));
                for (size_t i = 0; i < n; i += 2)
                        if (items[i].kind == TS_LIST || items[i].kind == TS_DICT)
                                return ts_fail(s, at, "a dict key is %s (unhashable)", kind_name(items[i].kind));
                if (t->kind == TS_DICT && (r = seq_extend(s, t->seq, items, n)) < 0)
                        return r;
                s->n_stack = start;
                return 0;
        }
        case 'q':       /* BINPUT */
        case 'r':       /* LONG_BINPUT */
                if ((r = need(s, op == 'q' ? 1 : 4, &p)) < 0)
                        return r;
                return memo_put(s, at, le(p, op == 'q' ? 1 : 4));
        case 0x94:      /* MEMOIZE */
                return memo_put(s, at, s->memo_count);
        case 'h':       /* BINGET */
        case 'j':       /* LONG_BINGET */
                if ((r = need(s, op == 'h' ? 1 : 4, &p)) < 0)
                        return r;
                return memo_get(s, at, le(p, op == 'h' ? 1 : 4));
        case 'c': {     /* GLOBAL */
                const uint8_t *m, *n;
                size_t ml, nl;
                if ((r = need_line(s, &m, &ml)) < 0 || (r = need_line(s, &n, &nl)) < 0)
                        return r;
                if ((r = import(s, at, m, ml, n, nl, &a)) < 0)
                        return r;
                return push(s, a);
        }
        case 0x93:      /* STACK_GLOBAL */
                if ((r = pop(s, at, &b)) < 0 || (r = pop(s, at, &a)) < 0)
                        return r;
                if (a.kind != TS_STR || b.kind != TS_STR)
                        return ts_fail(s, at, "STACK_GLOBAL operands are not str");
                if (a.aux > TS_GLOBAL_MAX || b.aux > TS_GLOBAL_MAX)
                        return ts_fail(s, at, "an import name longer than %d bytes", TS_GLOBAL_MAX);
                if ((r = import(s, at, a.s, a.aux, b.s, b.aux, &a)) < 0)
                        return r;
                return push(s, a);
        case 'R':       /* REDUCE */
                if ((r = pop(s, at, &b)) < 0 || !(t = top(s, at)))
                        return r < 0 ? r : -EINVAL;
                if ((r = call(s, at, t, &b, &a)) < 0)
                        return r;
                *t = a;
                return 0;
        case 'b':       /* BUILD */
                if ((r = pop(s, at, &b)) < 0 || !(t = top(s, at)))
                        return r < 0 ? r : -EINVAL;
                if (t->kind == TS_FOREIGN)
                        return 0;
                if (t->kind != TS_DICT || !(t->flags & TS_DICT_ORDERED))
                        return ts_fail(s, at, "BUILD on %s", kind_name(t->kind));
                /* An OrderedDict's attributes (a state dict's _metadata version
                 * table): not part of its items, not carried over. */
                if (b.kind != TS_DICT && b.kind != TS_NONE && b.kind != TS_TUPLE)
                        return ts_fail(s, at, "BUILD state of an OrderedDict is %s", kind_name(b.kind));
                return 0;
        case 'Q':       /* BINPERSID */
                if ((r = pop(s, at, &a)) < 0 || (r = persistent_load(s, at, &a, &b)) < 0)
                        return r;
                return push(s, b);
        case 0x80:      /* PROTO */
                if ((r = need(s, 1, &p)) < 0)
                        return r;
                if (p[0] > TS_HIGHEST_PROTOCOL)
                        return ts_fail(s, at, "unsupported pickle protocol %u", p[0]);
                return 0;
        case 0x95: {    /* FRAME */
                uint64_t n;
                if ((r = need(s, 8, &p)) < 0)
                        return r;
                n = le(p, 8);
                if (n > s->len - s->pos)
                        return ts_fail(s, at, "a FRAME longer than the data");
                if (s->frame_end && s->pos < s->frame_end)
                        return ts_fail(s, at, "a FRAME starts inside the previous frame");
                s->frame_end = s->pos + (size_t) n;
                return 0;
        }
        default: {
                static const char *const names[][2] = {
                        { "I", "INT" }, { "L", "LONG" }, { "F", "FLOAT" }, { "S", "STRING" }, { "V", "UNICODE" },
                        { "p", "PUT" }, { "g", "GET" }, { "P", "PERSID" }, { "i", "INST" }, { "o", "OBJ" },
                        { "\x81", "NEWOBJ" }, { "\x92", "NEWOBJ_EX" }, { "\x82", "EXT1" }, { "\x83", "EXT2" },
                        { "\x84", "EXT4" }, { "\x8f", "EMPTY_SET" }, { "\x90", "ADDITEMS" }, { "\x91", "FROZENSET" },
                        { "\x96", "BYTEARRAY8" }, { "\x97", "NEXT_BUFFER" }, { "\x98", "READONLY_BUFFER" },
                };
                for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                        if ((uint8_t) names[i][0][0] == op)
                                return ts_fail(s, at, "opcode %s is not one torch.save writes for a state dict; the converter does not evaluate it",
                                               names[i][1]);
                return ts_fail(s, at, "invalid opcode 0x%02x", op);
        }
        }
}

int ts_eval(struct ts_state *s, const uint8_t *buf, size_t len, enum ts_mode mode, struct ts_value *ret_root,
            size_t *ret_consumed) {
        struct ts_value root = { .kind = TS_NONE };
        bool stop = false;
        int r = 0;

        s->buf = buf;
        s->len = len;
        s->pos = 0;
        s->frame_end = 0;
        s->mode = mode;
        s->n_stack = 0;
        s->n_marks = 0;
        s->fence = 0;
        free(s->memo);
        s->memo = NULL;
        s->cap_memo = 0;
        s->memo_count = 0;
        s->error[0] = '\0';

        while (!stop && (r = step(s, &stop, &root)) == 0)
                ;
        if (r < 0) {
                if (!s->error[0])
                        ts_fail(s, s->pos, "cannot evaluate");
                return r == -ENOMEM ? -ENOMEM : -EINVAL;
        }
        *ret_root = root;
        *ret_consumed = s->pos;
        return 0;
}
