/* pickle.c — the pickle VM: executes no code, imports nothing. It reads opcodes as
 * CPython's C unpickler does (stack with mark fences, memo, frames, protocol-dependent
 * name mapping), records each import with how it was reached, and reports
 * obfuscation, nested pickles and malformed streams. Memory is bounded by named
 * limits; every limit that is hit becomes a finding, never a silent stop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cursor.h"
#include "pickle.h"
#include "text-codec.h"
#include "compat-pickle-table.h"

/* Limits. A real checkpoint stays far below each; an input that reaches one is
 * reported (SCAN_ERROR, high) and its scan ends there — fail closed. */
#define PICKLE_OPCODES_MAX   (UINT64_C(1) << 30)  /* ~1e9 opcodes: minutes of Python work */
#define PICKLE_STACK_MAX     (1u << 20)   /* values; CPython batches APPENDS by 1000 */
#define PICKLE_MARKS_MAX     (1u << 16)   /* nesting depth of MARKs */
#define PICKLE_MEMO_MAX      (1u << 22)   /* 4M memo slots = 96 MiB of values */
#define PICKLE_OBJS_MAX      (1u << 22)   /* live containers, as many as memo slots:
                                           * a pickler memoizes every container */
#define PICKLE_ARENA_MAX     ((size_t) 64 << 20)  /* decoded strings and decoder outputs */
#define PICKLE_NAME_MAX      1024         /* longest module/qualname decoded for matching */
#define PICKLE_GLOBALS_TRACKED 4096       /* imports remembered by index for messages */
#define PICKLE_SNIFF_OPCODES 64           /* opcodes a headerless sniff may run */
#define POBJ_KEEP            16           /* items kept per container; the rest are counted */
#define POBJ_INLINE          4            /* kept inline; more (up to POBJ_KEEP) on demand, so a
                                           * memoized pair costs ~120 bytes, not ~400 */
#define PICKLE_HIGHEST_PROTOCOL 5

enum pv_kind {
        PV_NONE, PV_BOOL, PV_INT, PV_BIGINT, PV_FLOAT, PV_STR, PV_BYTES,
        PV_TUPLE, PV_LIST, PV_DICT, PV_SET, PV_FROZENSET, PV_GLOBAL, PV_OBJ,
        PV_PERSID, PV_BUFFER, PV_OTHER,
};

/* What the VM knows about an imported name beyond its text. */
enum global_tag {
        TAG_PLAIN,
        TAG_DECODE_BASE64,
        TAG_DECODE_HEX,
        TAG_DECODE_ZLIB,
        TAG_DECODE_CODECS,      /* codecs.decode(data, "hex"|"base64"|"zlib") */
        TAG_JOBLIB_WRAPPER,
        TAG_NUMPY_DTYPE,
};

struct pobj;

/* 16 bytes: a memo of millions of slots is the VM's largest structure. */
struct pv {
        uint8_t kind;
        uint8_t tag;            /* PV_GLOBAL: enum global_tag */
        uint8_t present;        /* memo slots only: the slot has been set */
        uint8_t reserved;
        union {
                uint32_t len;   /* PV_STR/PV_BYTES/PV_BIGINT: byte length; content of
                                 * 4 GiB or more is kept as unknown (s NULL) */
                int32_t gidx;   /* PV_GLOBAL: index into vm->gnames, -1 if untracked */
        };
        union {
                const uint8_t *s;   /* NULL when the content is not known */
                int64_t i;
                struct pobj *o;
        };
};

struct pobj {
        uint32_t refs;
        uint32_t n;             /* items ever added */
        struct pv inl[POBJ_INLINE];  /* PV_OBJ: [0] callable, [1] args, [2] state */
        struct pv *more;             /* items POBJ_INLINE..POBJ_KEEP-1, allocated on demand */
};

_Static_assert(sizeof(struct pv) == 16, "struct pv must stay 16 bytes");

static const struct pv pv_absent;

/* A string or bytes value over [p, p+n); content beyond 4 GiB is not tracked. */
static inline struct pv pv_bytes(enum pv_kind kind, const uint8_t *p, size_t n) {
        if (n >= UINT32_MAX)
                return (struct pv) { .kind = (uint8_t) kind, .len = UINT32_MAX, .s = NULL };
        return (struct pv) { .kind = (uint8_t) kind, .len = (uint32_t) n, .s = p };
}

/* Item i of o for reading; an absent item reads as PV_NONE. */
static inline const struct pv *pobj_get(const struct pobj *o, size_t i) {
        if (i < POBJ_INLINE)
                return &o->inl[i];
        if (i < POBJ_KEEP && o->more)
                return &o->more[i - POBJ_INLINE];
        return &pv_absent;
}

struct gname {
        char text[2 * REPORT_NAME_MAX];
};

enum frame_mode {
        FRAMES_SEQUENTIAL,      /* in-memory / peekable file: frames are transparent */
        FRAMES_DISCARD,         /* file without peek (torch's BytesIO): a read that
                                 * crosses a frame end drops the frame's tail */
};

/* Fixed-size allocation for containers: chunks of many objects, a free list for
 * reuse, and one sweep at the end instead of a walk over every object. */
#define POOL_CHUNK_BYTES ((size_t) 2 << 20)   /* one transparent huge page when aligned */
/* A pool's first chunk: most pickles of a mass audit (optimizer states, configs,
 * small checkpoints' data.pkl) build a few hundred containers, and the kernel
 * zeroing a 2 MiB huge page for each of them cost more than their scan. */
#define POOL_FIRST_CHUNK_BYTES ((size_t) 64 << 10)
/* Memo slots past which the memo's reservation asks for huge pages (2 MiB of slots). */
#define MEMO_HUGE_FROM (POOL_CHUNK_BYTES / 16)

struct pool_chunk {
        struct pool_chunk *next;
        size_t size;
        size_t used;
        _Alignas(16) uint8_t data[];
};

struct pool {
        size_t elem;
        struct pool_chunk *chunks;
        void *free;
};

static void *pool_alloc(struct pool *p) {
        if (p->free) {
                void *r = p->free;
                p->free = *(void **) r;
                return r;
        }
        if (!p->chunks || p->chunks->size - sizeof(struct pool_chunk) - p->chunks->used < p->elem) {
                struct pool_chunk *c;
                size_t size = p->chunks ? POOL_CHUNK_BYTES : POOL_FIRST_CHUNK_BYTES;
                if (size == POOL_CHUNK_BYTES) {
                        /* Aligned to its size, so the kernel can back it with one huge
                         * page instead of taking 512 page faults. */
                        c = aligned_alloc(POOL_CHUNK_BYTES, POOL_CHUNK_BYTES);
                        if (c)
                                madvise(c, POOL_CHUNK_BYTES, MADV_HUGEPAGE);   /* a hint; failure is harmless */
                } else
                        c = malloc(size);
                if (!c)
                        return NULL;
                c->size = size;
                c->used = 0;
                c->next = p->chunks;
                p->chunks = c;
        }
        void *r = p->chunks->data + p->chunks->used;
        p->chunks->used += p->elem;
        return r;
}

static void pool_free(struct pool *p, void *x) {
        *(void **) x = p->free;
        p->free = x;
}

static void pool_destroy(struct pool *p) {
        while (p->chunks) {
                struct pool_chunk *c = p->chunks;
                p->chunks = c->next;
                free(c);
        }
        p->free = NULL;
}

struct arena_block {
        struct arena_block *next;
        size_t used, size;
        uint8_t data[];
};

struct vm {
        struct scan_ctx *ctx;
        const uint8_t *buf;
        size_t len, pos;
        size_t frame_end;       /* 0: no frame active */
        enum frame_mode frame_mode;
        bool frame_straddled;
        bool quiet;             /* sniffing: no findings, no globals */
        bool failed;            /* error or limit: stop */
        bool limit_hit;
        int proto;
        uint64_t opcodes;

        struct pv *stack;
        size_t n_stack, cap_stack;
        size_t *marks;
        size_t n_marks, cap_marks;
        size_t fence;

        struct pv *memo;
        bool memo_huge;         /* the memo's reservation asked for huge pages */
        size_t cap_memo, memo_len;

        size_t n_objs;
        struct pool objs;       /* struct pobj */
        struct pool mores;      /* POBJ_KEEP - POBJ_INLINE extra items */
        struct pobj **dead;     /* pending frees, iterative to bound C stack use */
        size_t n_dead, cap_dead;

        struct gname *gnames;
        size_t n_gnames;

        struct arena_block *arena;
        size_t arena_total;

        bool joblib;
        bool saw_import;        /* for sniffing headerless streams */
        bool import_names_valid;
        bool reported_call_nonglobal;
        bool reported_ext;
        struct pv result;
};

/* ---- findings ---------------------------------------------------------- */

#define vm_finding(vm, rule, sev, ...) do {                                          \
        if (!(vm)->quiet)                                                             \
                report_add_finding((vm)->ctx->report, (rule), (sev), VIA_NONE,        \
                                   (vm)->ctx->member, NULL, __VA_ARGS__);             \
} while (0)

static void vm_error(struct vm *vm, size_t at, const char *what) {
        if (!vm->failed)
                vm_finding(vm, RULE_MALFORMED, SEV_HIGH, "pickle: %s at offset %zu", what, at);
        vm->failed = true;
}

static void vm_limit(struct vm *vm, const char *what, size_t limit) {
        if (!vm->failed)
                vm_finding(vm, RULE_SCAN_ERROR, SEV_HIGH,
                           "pickle: %s exceeds the scanner's limit of %zu; the rest was not scanned",
                           what, limit);
        vm->failed = true;
        vm->limit_hit = true;
}

/* ---- arena for decoded bytes -------------------------------------------- */

static uint8_t *vm_alloc_bytes(struct vm *vm, size_t n) {
        struct arena_block *b = vm->arena;

        if (n > PICKLE_ARENA_MAX - vm->arena_total) {
                vm_limit(vm, "decoded string data", PICKLE_ARENA_MAX);
                return NULL;
        }
        if (!b || b->size - b->used < n) {
                size_t size = n > 65536 ? n : 65536;
                b = malloc(sizeof(*b) + size);
                if (!b) {
                        vm_limit(vm, "memory for decoded data", n);
                        return NULL;
                }
                b->size = size;
                b->used = 0;
                b->next = vm->arena;
                vm->arena = b;
        }
        uint8_t *p = b->data + b->used;
        b->used += n;
        vm->arena_total += n;
        return p;
}

/* ---- values and objects ---------------------------------------------------- */

static inline bool pv_has_obj(const struct pv *v) {
        return v->kind >= PV_TUPLE && v->kind <= PV_FROZENSET ? true : v->kind == PV_OBJ;
}

static inline void pv_ref(struct pv *v) {
        if (pv_has_obj(v) && v->o)
                v->o->refs++;
}

static void vm_release_dead(struct vm *vm) {
        while (vm->n_dead > 0) {
                struct pobj *o = vm->dead[--vm->n_dead];
                /* Unused slots are zeroed (PV_NONE), so every slot can be visited. */
                for (size_t i = 0; i < POBJ_KEEP; i++) {
                        struct pv *c = (struct pv *) pobj_get(o, i);
                        if (pv_has_obj(c) && c->o && --c->o->refs == 0) {
                                if (vm->n_dead == vm->cap_dead) {
                                        size_t nc = vm->cap_dead ? vm->cap_dead * 2 : 256;
                                        struct pobj **nd = realloc(vm->dead, nc * sizeof(*nd));
                                        if (!nd)
                                                continue;   /* leak rather than crash; freed at end */
                                        vm->dead = nd;
                                        vm->cap_dead = nc;
                                }
                                vm->dead[vm->n_dead++] = c->o;
                        }
                }
                if (o->more)
                        pool_free(&vm->mores, o->more);
                pool_free(&vm->objs, o);
                vm->n_objs--;
        }
}

static inline void pv_unref(struct vm *vm, struct pv *v) {
        if (pv_has_obj(v) && v->o && --v->o->refs == 0) {
                if (vm->n_dead == vm->cap_dead) {
                        size_t nc = vm->cap_dead ? vm->cap_dead * 2 : 256;
                        struct pobj **nd = realloc(vm->dead, nc * sizeof(*nd));
                        if (!nd)
                                return;
                        vm->dead = nd;
                        vm->cap_dead = nc;
                }
                vm->dead[vm->n_dead++] = v->o;
                vm_release_dead(vm);
        }
}

static struct pobj *vm_new_obj(struct vm *vm) {
        struct pobj *o;

        if (vm->n_objs >= PICKLE_OBJS_MAX) {
                vm_limit(vm, "number of live containers", PICKLE_OBJS_MAX);
                return NULL;
        }
        o = pool_alloc(&vm->objs);
        if (!o) {
                vm_limit(vm, "memory for containers", PICKLE_OBJS_MAX);
                return NULL;
        }
        memset(o, 0, sizeof(*o));
        o->refs = 1;
        vm->n_objs++;
        return o;
}

/* Adds v to o, taking over the caller's reference. */
static inline void pobj_add(struct vm *vm, struct pobj *o, struct pv *v) {
        if (o->n < POBJ_INLINE)
                o->inl[o->n] = *v;
        else {
                if (o->n < POBJ_KEEP && !o->more && (o->more = pool_alloc(&vm->mores)))
                        memset(o->more, 0, (POBJ_KEEP - POBJ_INLINE) * sizeof(*o->more));
                if (o->n < POBJ_KEEP && o->more)
                        o->more[o->n - POBJ_INLINE] = *v;
                else
                        pv_unref(vm, v);
        }
        o->n++;
}

/* ---- the stack ------------------------------------------------------------- */

static inline bool vm_push(struct vm *vm, struct pv v) {
        if (__builtin_expect(vm->n_stack == vm->cap_stack, 0)) {
                if (vm->cap_stack >= PICKLE_STACK_MAX) {
                        vm_limit(vm, "stack depth", PICKLE_STACK_MAX);
                        pv_unref(vm, &v);
                        return false;
                }
                size_t nc = vm->cap_stack ? vm->cap_stack * 2 : 256;
                struct pv *ns = realloc(vm->stack, nc * sizeof(*ns));
                if (!ns) {
                        vm_limit(vm, "memory for the stack", PICKLE_STACK_MAX);
                        pv_unref(vm, &v);
                        return false;
                }
                vm->stack = ns;
                vm->cap_stack = nc;
        }
        vm->stack[vm->n_stack++] = v;
        return true;
}

/* Pops into *ret (reference passes to caller). Underflow below the mark fence is
 * an error, as in CPython's Pdata_pop. */
static inline bool vm_pop(struct vm *vm, struct pv *ret) {
        if (__builtin_expect(vm->n_stack <= vm->fence, 0)) {
                vm_error(vm, vm->pos, "stack underflow");
                return false;
        }
        *ret = vm->stack[--vm->n_stack];
        return true;
}

static inline void vm_drop(struct vm *vm, struct pv *v) {
        pv_unref(vm, v);
}

/* Pops the top mark: returns the stack index it recorded, or SIZE_MAX. */
static size_t vm_marker(struct vm *vm) {
        if (vm->n_marks == 0) {
                vm_error(vm, vm->pos, "could not find MARK");
                return SIZE_MAX;
        }
        size_t m = vm->marks[--vm->n_marks];
        vm->fence = vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
        return m;
}

/* Pops stack[start..] into a new container of kind, pushed in their place. */
static bool vm_pop_into(struct vm *vm, size_t start, enum pv_kind kind, struct pv *ret) {
        if (start > vm->n_stack || start < vm->fence) {
                vm_error(vm, vm->pos, "stack underflow");
                return false;
        }
        struct pobj *o = vm_new_obj(vm);
        if (!o)
                return false;
        for (size_t i = start; i < vm->n_stack; i++)
                pobj_add(vm, o, &vm->stack[i]);
        vm->n_stack = start;
        *ret = (struct pv) { .kind = (uint8_t) kind, .o = o };
        return true;
}

/* ---- reading the input, with CPython's frame semantics --------------------- */

/* Makes n bytes at vm->pos available and returns them, or NULL (error reported).
 * A read that crosses the end of the current frame is where loaders disagree:
 * CPython reading a file without peek() drops the frame's tail; in memory it does
 * not; the pure-Python unpickler raises. That is reported as obfuscation. */
static const uint8_t *vm_read(struct vm *vm, size_t n) {
        if (vm->frame_end && vm->pos < vm->frame_end && n > vm->frame_end - vm->pos) {
                if (!vm->frame_straddled)
                        vm_finding(vm, RULE_PICKLE_OBFUSCATION, SEV_HIGH,
                                   "pickle: a read of %zu bytes at offset %zu crosses the end of the frame at %zu; loaders disagree on what follows",
                                   n, vm->pos, vm->frame_end);
                vm->frame_straddled = true;
                if (vm->frame_mode == FRAMES_DISCARD)
                        vm->pos = vm->frame_end;
        }
        if (vm->frame_end && vm->pos >= vm->frame_end)
                vm->frame_end = 0;
        if (n > vm->len - vm->pos) {
                vm_error(vm, vm->pos, "pickle data was truncated");
                return NULL;
        }
        const uint8_t *p = vm->buf + vm->pos;
        vm->pos += n;
        return p;
}

/* A '\n'-terminated line (the newline excluded from *ret_len). */
static const uint8_t *vm_readline(struct vm *vm, size_t *ret_len) {
        size_t start = vm->pos;
        const uint8_t *nl = memchr(vm->buf + start, '\n', vm->len - start);

        if (vm->frame_end && start < vm->frame_end && (!nl || (size_t) (nl - vm->buf) >= vm->frame_end)) {
                if (!vm->frame_straddled)
                        vm_finding(vm, RULE_PICKLE_OBFUSCATION, SEV_HIGH,
                                   "pickle: a text line at offset %zu runs past the end of the frame at %zu; loaders disagree on what follows",
                                   start, vm->frame_end);
                vm->frame_straddled = true;
                if (vm->frame_mode == FRAMES_DISCARD) {
                        start = vm->pos = vm->frame_end;
                        nl = memchr(vm->buf + start, '\n', vm->len - start);
                }
        }
        if (vm->frame_end && start >= vm->frame_end)
                vm->frame_end = 0;
        if (!nl) {
                vm_error(vm, start, "pickle data was truncated (no end of line)");
                return NULL;
        }
        *ret_len = (size_t) (nl - (vm->buf + start));
        vm->pos = (size_t) (nl - vm->buf) + 1;
        return vm->buf + start;
}

static uint64_t le_uint(const uint8_t *p, size_t n) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
                v |= (uint64_t) p[i] << (8 * i);
        return v;
}

/* ---- strings ----------------------------------------------------------------- */

static bool utf8_valid(const uint8_t *s, size_t n) {
        /* CPython decodes BINUNICODE with "surrogatepass": surrogates are allowed. */
        for (size_t i = 0; i < n;) {
                uint8_t c = s[i];
                size_t k;
                if (c < 0x80) {
                        i++;
                        continue;
                } else if (c >= 0xc2 && c <= 0xdf)
                        k = 1;
                else if (c >= 0xe0 && c <= 0xef)
                        k = 2;
                else if (c >= 0xf0 && c <= 0xf4)
                        k = 3;
                else
                        return false;
                if (n - i <= k)
                        return false;
                for (size_t j = 1; j <= k; j++)
                        if ((s[i + j] & 0xc0) != 0x80)
                                return false;
                if (c == 0xe0 && s[i + 1] < 0xa0)
                        return false;
                if (c == 0xf0 && s[i + 1] < 0x90)
                        return false;
                if (c == 0xf4 && s[i + 1] > 0x8f)
                        return false;
                i += k + 1;
        }
        return true;
}

/* Protocol 0 UNICODE: raw-unicode-escape (\uXXXX, \UXXXXXXXX; other bytes latin-1). */
static bool decode_raw_unicode_escape(struct vm *vm, const uint8_t *s, size_t n, struct pv *ret) {
        uint8_t *out = vm_alloc_bytes(vm, n * 2 + 4);
        size_t o = 0;

        if (!out)
                return false;
        for (size_t i = 0; i < n;) {
                if (s[i] == '\\' && i + 1 < n && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
                        /* An odd number of backslashes before u makes an escape. */
                        size_t digits = s[i + 1] == 'u' ? 4 : 8;
                        uint32_t cp = 0;
                        if (n - i - 2 < digits) {
                                vm_error(vm, vm->pos, "truncated \\u escape in UNICODE");
                                return false;
                        }
                        for (size_t j = 0; j < digits; j++) {
                                int h = hex_digit_value(s[i + 2 + j]);
                                if (h < 0) {
                                        vm_error(vm, vm->pos, "invalid \\u escape in UNICODE");
                                        return false;
                                }
                                cp = cp << 4 | (uint32_t) h;
                        }
                        if (cp > 0x10ffff) {
                                vm_error(vm, vm->pos, "\\U escape out of range in UNICODE");
                                return false;
                        }
                        o += utf8_encode(cp, out + o);
                        i += 2 + digits;
                } else if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\\') {
                        out[o++] = '\\';
                        out[o++] = '\\';
                        i += 2;
                } else {
                        o += utf8_encode(s[i], out + o);
                        i++;
                }
        }
        *ret = pv_bytes(PV_STR, out, o);
        return true;
}

/* Protocol 0 STRING: a quoted Python bytes repr, decoded as codecs.escape_decode. */
static bool decode_string_literal(struct vm *vm, const uint8_t *s, size_t n, struct pv *ret) {
        if (n < 2 || s[0] != s[n - 1] || (s[0] != '\'' && s[0] != '"')) {
                vm_error(vm, vm->pos, "the STRING opcode argument must be quoted");
                return false;
        }
        s++;
        n -= 2;
        uint8_t *out = vm_alloc_bytes(vm, n + 1);
        size_t o = 0;
        if (!out)
                return false;
        for (size_t i = 0; i < n;) {
                if (s[i] != '\\') {
                        out[o++] = s[i++];
                        continue;
                }
                if (++i >= n) {
                        vm_error(vm, vm->pos, "trailing \\ in STRING");
                        return false;
                }
                uint8_t c = s[i++];
                switch (c) {
                case '\n': break;
                case '\\': out[o++] = '\\'; break;
                case '\'': out[o++] = '\''; break;
                case '"': out[o++] = '"'; break;
                case 'b': out[o++] = '\b'; break;
                case 'f': out[o++] = '\f'; break;
                case 't': out[o++] = '\t'; break;
                case 'n': out[o++] = '\n'; break;
                case 'r': out[o++] = '\r'; break;
                case 'v': out[o++] = '\v'; break;
                case 'a': out[o++] = '\a'; break;
                case 'x': {
                        int h1 = i < n ? hex_digit_value(s[i]) : -1;
                        int h2 = i + 1 < n ? hex_digit_value(s[i + 1]) : -1;
                        if (h1 < 0 || h2 < 0) {
                                vm_error(vm, vm->pos, "invalid \\x escape in STRING");
                                return false;
                        }
                        out[o++] = (uint8_t) (h1 << 4 | h2);
                        i += 2;
                        break;
                }
                default:
                        if (c >= '0' && c <= '7') {
                                unsigned v = c - '0';
                                for (int k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '7'; k++)
                                        v = v * 8 + (s[i++] - '0');
                                out[o++] = (uint8_t) v;
                        } else {
                                out[o++] = '\\';
                                out[o++] = c;
                        }
                }
        }
        *ret = pv_bytes(PV_STR, out, o);
        return true;
}

/* ---- imports ------------------------------------------------------------------ */

static bool name_eq(const uint8_t *s, size_t n, const char *lit) {
        size_t l = strlen(lit);
        return n == l && memcmp(s, lit, l) == 0;
}

static bool is_identifier_path(const uint8_t *s, size_t n) {
        if (n == 0)
                return false;
        bool start = true;
        for (size_t i = 0; i < n; i++) {
                uint8_t c = s[i];
                if (c == '.') {
                        if (start)
                                return false;
                        start = true;
                        continue;
                }
                bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
                if (!alpha && !(c >= '0' && c <= '9' && !start))
                        return false;
                start = false;
        }
        return !start;
}

static enum global_tag tag_for(const char *module, const char *name) {
        static const struct { const char *module, *name; enum global_tag tag; } known[] = {
                { "base64", "b64decode", TAG_DECODE_BASE64 },
                { "base64", "standard_b64decode", TAG_DECODE_BASE64 },
                { "base64", "urlsafe_b64decode", TAG_DECODE_BASE64 },
                { "base64", "decodebytes", TAG_DECODE_BASE64 },
                { "base64", "decodestring", TAG_DECODE_BASE64 },
                { "binascii", "a2b_base64", TAG_DECODE_BASE64 },
                { "base64", "b16decode", TAG_DECODE_HEX },
                { "binascii", "unhexlify", TAG_DECODE_HEX },
                { "binascii", "a2b_hex", TAG_DECODE_HEX },
                { "builtins", "bytes.fromhex", TAG_DECODE_HEX },
                { "builtins", "bytearray.fromhex", TAG_DECODE_HEX },
                { "zlib", "decompress", TAG_DECODE_ZLIB },
                { "gzip", "decompress", TAG_DECODE_ZLIB },
                { "codecs", "decode", TAG_DECODE_CODECS },
                { "_codecs", "decode", TAG_DECODE_CODECS },
                { "joblib.numpy_pickle", "NumpyArrayWrapper", TAG_JOBLIB_WRAPPER },
                { "sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper", TAG_JOBLIB_WRAPPER },
                { "numpy", "dtype", TAG_NUMPY_DTYPE },
                { "numpy.core.multiarray", "dtype", TAG_NUMPY_DTYPE },
        };
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                if (strcmp(module, known[i].module) == 0 && strcmp(name, known[i].name) == 0)
                        return known[i].tag;
        return TAG_PLAIN;
}

/* Resolves (module, name) as find_class() will, records it, and returns the value
 * that the import pushes. */
static struct pv vm_import(struct vm *vm, const uint8_t *m, size_t ml, const uint8_t *n, size_t nl,
                           enum mg_via via) {
        char module[PICKLE_NAME_MAX], name[PICKLE_NAME_MAX];
        struct pv g = { .kind = PV_GLOBAL, .gidx = -1 };

        vm->saw_import = true;
        if (!is_identifier_path(m, ml) || !is_identifier_path(n, nl))
                vm->import_names_valid = false;
        if (vm->quiet)
                return g;

        /* Python 2 names, as CPython maps them under protocol < 3 (fix_imports). */
        if (vm->proto < 3) {
                bool mapped = false;
                for (size_t i = 0; i < sizeof(compat_names) / sizeof(compat_names[0]); i++)
                        if (name_eq(m, ml, compat_names[i].module) && name_eq(n, nl, compat_names[i].name)) {
                                m = (const uint8_t *) compat_names[i].new_module;
                                ml = strlen(compat_names[i].new_module);
                                n = (const uint8_t *) compat_names[i].new_name;
                                nl = strlen(compat_names[i].new_name);
                                mapped = true;
                                break;
                        }
                if (!mapped)
                        for (size_t i = 0; i < sizeof(compat_modules) / sizeof(compat_modules[0]); i++)
                                if (name_eq(m, ml, compat_modules[i].module)) {
                                        m = (const uint8_t *) compat_modules[i].new_module;
                                        ml = strlen(compat_modules[i].new_module);
                                        break;
                                }
        }

        report_add_global(vm->ctx->report, m, ml, n, nl, via, vm->ctx->member);
        report_escape(module, sizeof(module), m, ml, ": ");
        report_escape(name, sizeof(name), n, nl, ": ");
        char full[2 * PICKLE_NAME_MAX + 2];
        snprintf(full, sizeof(full), "%s:%s", module, name);

        if (ml > REPORT_NAME_MAX - 1 || nl > REPORT_NAME_MAX - 1)
                report_add_finding(vm->ctx->report, RULE_PICKLE_OBFUSCATION, SEV_HIGH, via, vm->ctx->member, NULL,
                                   "import name longer than %d bytes (reported truncated)", REPORT_NAME_MAX - 1);
        if (memchr(n, '.', nl)) {
                char gl[2 * REPORT_NAME_MAX];
                snprintf(gl, sizeof(gl), "%.*s", (int) sizeof(gl) - 1, full);
                report_add_finding(vm->ctx->report, RULE_PICKLE_OBFUSCATION, SEV_HIGH, via, vm->ctx->member, gl,
                                   "dotted qualname %s: the unpickler walks attributes from %s", full, module);
        }

        g.tag = (uint8_t) tag_for(module, name);
        if (g.tag == TAG_JOBLIB_WRAPPER)
                vm->joblib = true;
        if (vm->n_gnames < PICKLE_GLOBALS_TRACKED) {
                snprintf(vm->gnames[vm->n_gnames].text, sizeof(vm->gnames[0].text), "%.*s",
                         (int) sizeof(vm->gnames[0].text) - 1, full);
                g.gidx = (int32_t) vm->n_gnames++;
        }
        return g;
}

static const char *vm_gname(const struct vm *vm, const struct pv *g) {
        return g->gidx >= 0 ? vm->gnames[g->gidx].text : "(an import)";
}

/* ---- nested pickles and decoders ------------------------------------------------- */

static void vm_scan_embedded(struct vm *vm, const uint8_t *s, size_t n, const char *how);

/* A bytes/str constant that is itself a complete pickle is scanned as a member. */
static void vm_check_embedded(struct vm *vm, const struct pv *v) {
        if (vm->quiet || !v->s || v->len < 4 || v->s[v->len - 1] != '.')
                return;
        if (!(v->s[0] == 0x80 && v->s[1] <= PICKLE_HIGHEST_PROTOCOL) && !pickle_sniff(v->s, v->len))
                return;
        vm_scan_embedded(vm, v->s, v->len, "embedded");
}

static size_t decode_hex(const uint8_t *s, size_t n, uint8_t *out) {
        size_t o = 0;
        int hi = -1;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')
                        continue;
                int h = hex_digit_value(s[i]);
                if (h < 0)
                        return SIZE_MAX;
                if (hi < 0)
                        hi = h;
                else {
                        out[o++] = (uint8_t) (hi << 4 | h);
                        hi = -1;
                }
        }
        return hi < 0 ? o : SIZE_MAX;
}

static int b64val(uint8_t c) {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+' || c == '-') return 62;
        if (c == '/' || c == '_') return 63;
        return -1;
}

static size_t decode_base64(const uint8_t *s, size_t n, uint8_t *out) {
        uint32_t acc = 0;
        int bits = 0;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '=')
                        break;
                int v = b64val(s[i]);
                if (v < 0)
                        continue;   /* b64decode discards non-alphabet characters */
                acc = acc << 6 | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (uint8_t) (acc >> bits);
                }
        }
        return o;
}

static bool decode_zlib(struct vm *vm, const uint8_t *s, size_t n, struct pv *ret) {
        uint8_t *out;
        size_t got;
        bool truncated;

        /* A stream cut by the limit is not followed: the loader global that would
         * read it is judged on its own. */
        if (scan_inflate(s, n, PICKLE_ARENA_MAX - vm->arena_total, &out, &got, &truncated) < 0)
                return false;
        uint8_t *dst = truncated ? NULL : vm_alloc_bytes(vm, got);
        if (dst)
                memcpy(dst, out, got);
        free(out);
        if (!dst)
                return false;
        *ret = pv_bytes(PV_BYTES, dst, got);
        return true;
}

/* REDUCE of a known decoder on a constant: computes the result, so that a chain
 * base64 -> zlib -> pickle.loads is followed to the embedded pickle. */
static bool vm_emulate_decoder(struct vm *vm, const struct pv *callable, const struct pv *args, struct pv *ret) {
        if (vm->quiet || callable->kind != PV_GLOBAL || callable->tag == TAG_PLAIN ||
            callable->tag >= TAG_JOBLIB_WRAPPER)
                return false;
        if (args->kind != PV_TUPLE || !args->o || args->o->n < 1)
                return false;
        const struct pv *data = pobj_get(args->o, 0);
        if ((data->kind != PV_STR && data->kind != PV_BYTES) || !data->s)
                return false;

        enum global_tag tag = callable->tag;
        if (tag == TAG_DECODE_CODECS) {
                const struct pv *enc = args->o->n >= 2 ? pobj_get(args->o, 1) : NULL;
                if (!enc || enc->kind != PV_STR || !enc->s)
                        return false;
                if (name_eq(enc->s, enc->len, "hex") || name_eq(enc->s, enc->len, "hex_codec"))
                        tag = TAG_DECODE_HEX;
                else if (name_eq(enc->s, enc->len, "base64") || name_eq(enc->s, enc->len, "base64_codec"))
                        tag = TAG_DECODE_BASE64;
                else if (name_eq(enc->s, enc->len, "zlib") || name_eq(enc->s, enc->len, "zlib_codec"))
                        tag = TAG_DECODE_ZLIB;
                else
                        return false;
        }
        if (tag == TAG_DECODE_ZLIB)
                return decode_zlib(vm, data->s, data->len, ret);

        uint8_t *out = vm_alloc_bytes(vm, data->len / 2 + 4);
        if (!out)
                return false;
        size_t got = tag == TAG_DECODE_HEX ? decode_hex(data->s, data->len, out)
                                           : decode_base64(data->s, data->len, out);
        if (got == SIZE_MAX)
                return false;
        *ret = pv_bytes(PV_BYTES, out, got);
        return true;
}

/* ---- joblib: raw array bytes inline after a NumpyArrayWrapper BUILD --------------- */

static const struct pv *dict_get(const struct pv *d, const char *key) {
        if (d->kind != PV_DICT || !d->o)
                return NULL;
        size_t n = d->o->n < POBJ_KEEP ? d->o->n : POBJ_KEEP;
        for (size_t i = 0; i + 1 < n; i += 2) {
                const struct pv *k = pobj_get(d->o, i);
                if (k->kind == PV_STR && k->s && name_eq(k->s, k->len, key))
                        return pobj_get(d->o, i + 1);
        }
        return NULL;
}

static bool pv_small_int(const struct pv *v, int64_t *ret) {
        if (v->kind == PV_INT) {
                *ret = v->i;
                return true;
        }
        if (v->kind == PV_BOOL) {
                *ret = v->i;
                return true;
        }
        return false;
}

/* After BUILD of a NumpyArrayWrapper, joblib's NumpyUnpickler reads the array from
 * the file: an optional alignment padding, then count*itemsize raw bytes, or, for
 * object arrays, a whole protocol-2 pickle. Mirrors NumpyArrayWrapper.read_array. */
static void vm_joblib_skip_array(struct vm *vm, const struct pv *state) {
        const struct pv *shape = dict_get(state, "shape");
        const struct pv *dtype = dict_get(state, "dtype");
        const struct pv *align = dict_get(state, "numpy_array_alignment_bytes");

        if (!shape || !dtype || shape->kind != PV_TUPLE || !shape->o || dtype->kind != PV_OBJ || !dtype->o) {
                vm_finding(vm, RULE_MALFORMED, SEV_HIGH,
                           "joblib: NumpyArrayWrapper at offset %zu without a readable shape and dtype; the array bytes cannot be located",
                           vm->pos);
                vm->failed = true;
                return;
        }
        if (shape->o->n > POBJ_KEEP) {
                vm_finding(vm, RULE_SCAN_ERROR, SEV_HIGH, "joblib: array of %u dimensions at offset %zu is beyond the scanner's limit",
                           shape->o->n, vm->pos);
                vm->failed = true;
                return;
        }
        /* dtype object: items[1] = args ('f8', False, True), items[2] = BUILD state. */
        const struct pv *dargs = pobj_get(dtype->o, 1), *dstate = pobj_get(dtype->o, 2);
        if (dargs->kind != PV_TUPLE || !dargs->o || dargs->o->n < 1 || pobj_get(dargs->o, 0)->kind != PV_STR ||
            !pobj_get(dargs->o, 0)->s) {
                vm_finding(vm, RULE_MALFORMED, SEV_HIGH, "joblib: unreadable dtype at offset %zu", vm->pos);
                vm->failed = true;
                return;
        }
        const struct pv *ts = pobj_get(dargs->o, 0);
        int64_t elsize = -1, flags = 0;
        if (dstate->kind == PV_TUPLE && dstate->o && dstate->o->n >= 8) {
                pv_small_int(pobj_get(dstate->o, 5), &elsize);
                pv_small_int(pobj_get(dstate->o, 7), &flags);
        }
        bool hasobject = (ts->len >= 1 && ts->s[0] == 'O') || (flags & 1);
        uint64_t itemsize = 0;
        if (elsize > 0)
                itemsize = (uint64_t) elsize;
        else {
                for (size_t i = 1; i < ts->len && ts->s[i] >= '0' && ts->s[i] <= '9' && itemsize < (1u << 30); i++)
                        itemsize = itemsize * 10 + (ts->s[i] - '0');
        }

        if (hasobject) {
                /* A whole pickle follows: scan it as part of this member, one level
                 * deeper (object arrays of object arrays are bounded like any nesting). */
                struct pickle_result sub;
                if (vm->pos >= vm->len) {
                        vm_error(vm, vm->pos, "joblib object array: pickle data was truncated");
                        return;
                }
                if (vm->ctx->depth + 1 >= SCAN_DEPTH_MAX) {
                        vm_limit(vm, "nesting of joblib object arrays", SCAN_DEPTH_MAX);
                        return;
                }
                vm->ctx->depth++;
                pickle_scan_one(vm->ctx, vm->buf + vm->pos, vm->len - vm->pos, &sub);
                vm->ctx->depth--;
                vm->pos += sub.consumed;
                if (!sub.complete)
                        vm->failed = true;
                return;
        }

        uint64_t count = 1;
        for (uint32_t i = 0; i < shape->o->n; i++) {
                int64_t d;
                if (!pv_small_int(pobj_get(shape->o, i), &d) || d < 0) {
                        vm_finding(vm, RULE_MALFORMED, SEV_HIGH, "joblib: invalid array shape at offset %zu", vm->pos);
                        vm->failed = true;
                        return;
                }
                if (d != 0 && count > UINT64_MAX / (uint64_t) d) {
                        vm_error(vm, vm->pos, "joblib array size overflows");
                        return;
                }
                count *= (uint64_t) d;
        }
        if (itemsize == 0 && count != 0) {
                vm_finding(vm, RULE_MALFORMED, SEV_HIGH, "joblib: dtype with unknown item size at offset %zu", vm->pos);
                vm->failed = true;
                return;
        }
        int64_t a;
        if (align && pv_small_int(align, &a)) {
                const uint8_t *pad = vm_read(vm, 1);
                if (!pad || !vm_read(vm, pad[0] == 0 ? 0 : pad[0]))
                        return;
        }
        if (itemsize && count > UINT64_MAX / itemsize) {
                vm_error(vm, vm->pos, "joblib array size overflows");
                return;
        }
        uint64_t bytes = count * itemsize;
        if (bytes > vm->len - vm->pos) {
                vm_error(vm, vm->pos, "joblib array data was truncated");
                return;
        }
        vm->pos += (size_t) bytes;
}

/* ---- the interpreter ---------------------------------------------------------------- */

static bool memo_put(struct vm *vm, uint64_t idx) {
        if (vm->n_stack <= vm->fence) {
                vm_error(vm, vm->pos, "stack underflow on memo put");
                return false;
        }
        if (idx >= PICKLE_MEMO_MAX) {
                vm_limit(vm, "memo index", PICKLE_MEMO_MAX);
                return false;
        }
        if (!vm->memo) {
                /* The whole limit is reserved once, untouched pages cost nothing, and
                 * growth never copies: a memo is often the largest thing a pickle
                 * builds. */
                void *m = mmap(NULL, PICKLE_MEMO_MAX * sizeof(struct pv), PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (m == MAP_FAILED) {
                        vm_limit(vm, "memory for the memo", PICKLE_MEMO_MAX);
                        return false;
                }
                vm->memo = m;
                vm->cap_memo = PICKLE_MEMO_MAX;
        }
        if (idx >= MEMO_HUGE_FROM && !vm->memo_huge) {
                /* Only a large memo is worth huge pages: a small pickle's first
                 * put would otherwise have a whole 2 MiB page zeroed. */
                madvise(vm->memo, PICKLE_MEMO_MAX * sizeof(struct pv), MADV_HUGEPAGE);
                vm->memo_huge = true;
        }
        struct pv *slot = &vm->memo[idx];
        struct pv v = vm->stack[vm->n_stack - 1];
        pv_ref(&v);
        if (slot->present)
                pv_unref(vm, slot);
        else
                vm->memo_len++;
        *slot = v;
        slot->present = 1;
        return true;
}

static bool memo_get(struct vm *vm, uint64_t idx) {
        if (idx >= vm->cap_memo || !vm->memo[idx].present) {
                vm_error(vm, vm->pos, "memo value not found");
                return false;
        }
        struct pv v = vm->memo[idx];
        v.present = 0;
        pv_ref(&v);
        return vm_push(vm, v);
}

static bool parse_decimal(const uint8_t *s, size_t n, int64_t *ret, bool *big) {
        size_t i = 0;
        bool neg = false;
        uint64_t v = 0;
        *big = false;
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
                i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
                neg = s[i++] == '-';
        if (i >= n)
                return false;
        size_t start = i;
        for (; i < n && ((s[i] >= '0' && s[i] <= '9') || (s[i] == '_' && i > start && i + 1 < n &&
                                                          s[i + 1] >= '0' && s[i + 1] <= '9')); i++) {
                if (s[i] == '_')   /* PyLong_FromString accepts 1_000 */
                        continue;
                if (v > (UINT64_MAX - 9) / 10)
                        *big = true;
                else
                        v = v * 10 + (uint64_t) (s[i] - '0');
        }
        if (i == start)
                return false;
        if (i < n && s[i] == 'L')
                i++;
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
                i++;
        if (i != n)
                return false;
        if (v > INT64_MAX)
                *big = true;
        *ret = neg ? -(int64_t) v : (int64_t) v;
        return true;
}

static void vm_call(struct vm *vm, struct pv *callable, struct pv *args, const char *op) {
        struct pv result = { .kind = PV_OBJ };

        if (callable->kind != PV_GLOBAL && !vm->reported_call_nonglobal) {
                vm->reported_call_nonglobal = true;
                vm_finding(vm, RULE_PICKLE_OBFUSCATION, SEV_HIGH,
                           "pickle: %s at offset %zu calls a value that is not an imported name (the result of an earlier call or a container)",
                           op, vm->pos);
        }
        if (vm_emulate_decoder(vm, callable, args, &result)) {
                vm_check_embedded(vm, &result);
        } else {
                struct pobj *o = vm_new_obj(vm);
                if (!o) {
                        pv_unref(vm, callable);
                        pv_unref(vm, args);
                        return;
                }
                o->inl[0] = *callable;
                o->inl[1] = *args;
                o->n = 2;
                result.o = o;
                vm_push(vm, result);
                return;
        }
        pv_unref(vm, callable);
        pv_unref(vm, args);
        vm_push(vm, result);
}

static void vm_build(struct vm *vm) {
        struct pv state, *inst;

        if (vm->n_stack < vm->fence + 2) {
                vm_error(vm, vm->pos, "stack underflow on BUILD");
                return;
        }
        vm_pop(vm, &state);
        inst = &vm->stack[vm->n_stack - 1];
        if (inst->kind == PV_GLOBAL) {
                char gl[2 * REPORT_NAME_MAX];
                snprintf(gl, sizeof(gl), "%.*s", (int) sizeof(gl) - 1, vm_gname(vm, inst));
                if (!vm->quiet)
                        report_add_finding(vm->ctx->report, RULE_PICKLE_OBFUSCATION, SEV_HIGH, VIA_NONE,
                                           vm->ctx->member, inst->gidx >= 0 ? gl : NULL,
                                           "pickle: BUILD at offset %zu sets attributes on the imported object %s",
                                           vm->pos, vm_gname(vm, inst));
                pv_unref(vm, &state);
                return;
        }
        if (inst->kind == PV_OBJ && inst->o) {
                struct pobj *o = inst->o;
                const struct pv *callable = &o->inl[0];
                pv_unref(vm, &o->inl[2]);
                o->inl[2] = state;
                if (o->n < 3)
                        o->n = 3;
                if (callable->kind == PV_GLOBAL && callable->tag == TAG_JOBLIB_WRAPPER) {
                        /* joblib's load_build pops the wrapper and pushes the array. */
                        struct pv st = o->inl[2];
                        pv_ref(&st);
                        vm_joblib_skip_array(vm, &st);
                        pv_unref(vm, &st);
                }
                return;
        }
        pv_unref(vm, &state);
}

/* Runs one stream. */
static void vm_run(struct vm *vm) {
        struct pv a, b, c;
        const uint8_t *p;
        size_t n;

        while (!vm->failed) {
                if (__builtin_expect(++vm->opcodes > PICKLE_OPCODES_MAX, 0)) {
                        vm_limit(vm, "opcode count", (size_t) PICKLE_OPCODES_MAX);
                        return;
                }
                if (vm->quiet && vm->opcodes > PICKLE_SNIFF_OPCODES)
                        return;
                size_t at = vm->pos;
                if (!(p = vm_read(vm, 1)))
                        return;
                uint8_t op = p[0];

                switch (op) {
                case '(':       /* MARK */
                        if (vm->n_marks == vm->cap_marks) {
                                if (vm->cap_marks >= PICKLE_MARKS_MAX) {
                                        vm_limit(vm, "MARK depth", PICKLE_MARKS_MAX);
                                        return;
                                }
                                size_t nc = vm->cap_marks ? vm->cap_marks * 2 : 64;
                                size_t *nm = realloc(vm->marks, nc * sizeof(*nm));
                                if (!nm) {
                                        vm_limit(vm, "memory for marks", PICKLE_MARKS_MAX);
                                        return;
                                }
                                vm->marks = nm;
                                vm->cap_marks = nc;
                        }
                        vm->marks[vm->n_marks++] = vm->n_stack;
                        vm->fence = vm->n_stack;
                        break;
                case '.':       /* STOP */
                        if (!vm_pop(vm, &vm->result))
                                return;
                        return;
                case '0':       /* POP */
                        if (vm->n_marks > 0 && vm->marks[vm->n_marks - 1] == vm->n_stack) {
                                vm->n_marks--;
                                vm->fence = vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
                        } else if (vm_pop(vm, &a))
                                vm_drop(vm, &a);
                        break;
                case '1':       /* POP_MARK */
                        if ((n = vm_marker(vm)) == SIZE_MAX)
                                return;
                        while (vm->n_stack > n) {
                                vm->n_stack--;
                                vm_drop(vm, &vm->stack[vm->n_stack]);
                        }
                        break;
                case '2':       /* DUP */
                        if (vm->n_stack <= vm->fence) {
                                vm_error(vm, at, "stack underflow on DUP");
                                return;
                        }
                        a = vm->stack[vm->n_stack - 1];
                        pv_ref(&a);
                        vm_push(vm, a);
                        break;
                case 'N':
                        vm_push(vm, (struct pv) { .kind = PV_NONE });
                        break;
                case 0x88:      /* NEWTRUE */
                case 0x89:      /* NEWFALSE */
                        vm_push(vm, (struct pv) { .kind = PV_BOOL, .i = op == 0x88 });
                        break;
                case 'I': {     /* INT */
                        int64_t v;
                        bool big;
                        if (!(p = vm_readline(vm, &n)))
                                return;
                        if (n == 2 && p[0] == '0' && (p[1] == '0' || p[1] == '1')) {
                                vm_push(vm, (struct pv) { .kind = PV_BOOL, .i = p[1] == '1' });
                                break;
                        }
                        /* CPython also takes 0x10, 0o7, 0b1 and more (strtol/PyLong_FromString
                         * with base 0): an argument we cannot read is an unknown int,
                         * never a reason to stop reading what follows. */
                        if (!parse_decimal(p, n, &v, &big))
                                big = true;
                        vm_push(vm, big ? (struct pv) { .kind = PV_BIGINT } : (struct pv) { .kind = PV_INT, .i = v });
                        break;
                }
                case 'L': {     /* LONG */
                        int64_t v;
                        bool big;
                        if (!(p = vm_readline(vm, &n)))
                                return;
                        if (!parse_decimal(p, n, &v, &big))
                                big = true;   /* as for INT */
                        vm_push(vm, big ? (struct pv) { .kind = PV_BIGINT } : (struct pv) { .kind = PV_INT, .i = v });
                        break;
                }
                case 'J':       /* BININT */
                        if (!(p = vm_read(vm, 4)))
                                return;
                        vm_push(vm, (struct pv) { .kind = PV_INT, .i = (int32_t) le_uint(p, 4) });
                        break;
                case 'K':       /* BININT1 */
                        if (!(p = vm_read(vm, 1)))
                                return;
                        vm_push(vm, (struct pv) { .kind = PV_INT, .i = p[0] });
                        break;
                case 'M':       /* BININT2 */
                        if (!(p = vm_read(vm, 2)))
                                return;
                        vm_push(vm, (struct pv) { .kind = PV_INT, .i = (int64_t) le_uint(p, 2) });
                        break;
                case 0x8a:      /* LONG1 */
                case 0x8b: {    /* LONG4 */
                        size_t sz;
                        if (!(p = vm_read(vm, op == 0x8a ? 1 : 4)))
                                return;
                        if (op == 0x8a)
                                sz = p[0];
                        else {
                                int32_t s32 = (int32_t) le_uint(p, 4);
                                if (s32 < 0) {
                                        vm_error(vm, at, "LONG pickle has negative byte count");
                                        return;
                                }
                                sz = (size_t) s32;
                        }
                        if (!(p = vm_read(vm, sz)))
                                return;
                        if (sz <= 8) {
                                uint64_t u = le_uint(p, sz);
                                if (sz > 0 && sz < 8 && (p[sz - 1] & 0x80))
                                        u |= ~UINT64_C(0) << (8 * sz);
                                vm_push(vm, (struct pv) { .kind = PV_INT, .i = (int64_t) u });
                        } else
                                vm_push(vm, pv_bytes(PV_BIGINT, p, sz));
                        break;
                }
                case 'F': {     /* FLOAT */
                        if (!(p = vm_readline(vm, &n)))
                                return;
                        vm_push(vm, (struct pv) { .kind = PV_FLOAT });
                        break;
                }
                case 'G':       /* BINFLOAT */
                        if (!vm_read(vm, 8))
                                return;
                        vm_push(vm, (struct pv) { .kind = PV_FLOAT });
                        break;
                case 'S': {     /* STRING */
                        if (!(p = vm_readline(vm, &n)))
                                return;
                        /* CPython strips trailing whitespace before checking quotes. */
                        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
                                n--;
                        if (vm->quiet) {
                                if (n < 2 || p[0] != p[n - 1] || (p[0] != '\'' && p[0] != '"')) {
                                        vm_error(vm, at, "the STRING opcode argument must be quoted");
                                        return;
                                }
                                vm_push(vm, (struct pv) { .kind = PV_STR });
                                break;
                        }
                        if (!decode_string_literal(vm, p, n, &a))
                                return;
                        vm_check_embedded(vm, &a);
                        vm_push(vm, a);
                        break;
                }
                case 'T':       /* BINSTRING */
                case 'U':       /* SHORT_BINSTRING */
                case 'B':       /* BINBYTES */
                case 'C':       /* SHORT_BINBYTES */
                case 0x8e:      /* BINBYTES8 */
                case 0x96:      /* BYTEARRAY8 */
                case 'X':       /* BINUNICODE */
                case 0x8c:      /* SHORT_BINUNICODE */
                case 0x8d: {    /* BINUNICODE8 */
                        size_t lsz = (op == 'U' || op == 'C' || op == 0x8c) ? 1
                                   : (op == 0x8e || op == 0x96 || op == 0x8d) ? 8 : 4;
                        uint64_t sz;
                        if (!(p = vm_read(vm, lsz)))
                                return;
                        sz = le_uint(p, lsz);
                        if (op == 'T' && (int32_t) sz < 0) {
                                vm_error(vm, at, "BINSTRING pickle has negative byte count");
                                return;
                        }
                        if (lsz == 8 && sz > (uint64_t) INT64_MAX) {
                                vm_error(vm, at, "byte count exceeds the maximum size");
                                return;
                        }
                        if (sz > vm->len) {
                                vm_error(vm, at, "pickle data was truncated");
                                return;
                        }
                        if (!(p = vm_read(vm, (size_t) sz)))
                                return;
                        bool is_unicode = op == 'X' || op == 0x8c || op == 0x8d;
                        if (is_unicode && !vm->quiet && !utf8_valid(p, (size_t) sz)) {
                                vm_error(vm, at, "BINUNICODE is not valid UTF-8");
                                return;
                        }
                        /* Python 3 decodes the protocol-2 string opcodes to str (ASCII
                         * by default), so they can name imports. */
                        a = pv_bytes((is_unicode || op == 'T' || op == 'U') ? PV_STR : PV_BYTES, p, (size_t) sz);
                        vm_check_embedded(vm, &a);
                        vm_push(vm, a);
                        break;
                }
                case 'V': {     /* UNICODE */
                        if (!(p = vm_readline(vm, &n)))
                                return;
                        if (vm->quiet) {
                                vm_push(vm, (struct pv) { .kind = PV_STR });
                                break;
                        }
                        if (!decode_raw_unicode_escape(vm, p, n, &a))
                                return;
                        vm_push(vm, a);
                        break;
                }
                case ')':       /* EMPTY_TUPLE */
                case ']':       /* EMPTY_LIST */
                case '}':       /* EMPTY_DICT */
                case 0x8f: {    /* EMPTY_SET */
                        struct pobj *o = vm_new_obj(vm);
                        if (!o)
                                return;
                        enum pv_kind k = op == ')' ? PV_TUPLE : op == ']' ? PV_LIST : op == '}' ? PV_DICT : PV_SET;
                        vm_push(vm, (struct pv) { .kind = (uint8_t) k, .o = o });
                        break;
                }
                case 't':       /* TUPLE */
                case 'l':       /* LIST */
                case 'd':       /* DICT */
                case 0x91: {    /* FROZENSET */
                        if ((n = vm_marker(vm)) == SIZE_MAX)
                                return;
                        if (op == 'd' && (vm->n_stack - n) % 2) {
                                vm_error(vm, at, "odd number of items for DICT");
                                return;
                        }
                        enum pv_kind k = op == 't' ? PV_TUPLE : op == 'l' ? PV_LIST : op == 'd' ? PV_DICT : PV_FROZENSET;
                        if (!vm_pop_into(vm, n, k, &a))
                                return;
                        vm_push(vm, a);
                        break;
                }
                case 0x85:      /* TUPLE1 */
                case 0x86:      /* TUPLE2 */
                case 0x87: {    /* TUPLE3 */
                        size_t k = (size_t) (op - 0x84);
                        if (vm->n_stack < vm->fence + k) {
                                vm_error(vm, at, "stack underflow on TUPLE");
                                return;
                        }
                        if (!vm_pop_into(vm, vm->n_stack - k, PV_TUPLE, &a))
                                return;
                        vm_push(vm, a);
                        break;
                }
                case 'a':       /* APPEND */
                case 'e':       /* APPENDS */
                case 's':       /* SETITEM */
                case 'u':       /* SETITEMS */
                case 0x90: {    /* ADDITEMS */
                        size_t x;
                        if (op == 'a')
                                x = vm->n_stack >= 1 ? vm->n_stack - 1 : 0;
                        else if (op == 's')
                                x = vm->n_stack >= 2 ? vm->n_stack - 2 : 0;
                        else if ((x = vm_marker(vm)) == SIZE_MAX)
                                return;
                        /* CPython: APPEND checks the fence; the others only that the
                         * target index lies inside the stack. */
                        if ((op == 'a' && vm->n_stack <= vm->fence + 1) || x > vm->n_stack || x == 0) {
                                vm_error(vm, at, "stack underflow on APPEND/SETITEM");
                                return;
                        }
                        if ((op == 's' || op == 'u') && (vm->n_stack - x) % 2) {
                                vm_error(vm, at, "odd number of items for SETITEMS");
                                return;
                        }
                        struct pv *target = &vm->stack[x - 1];
                        bool keep = (target->kind == PV_LIST || target->kind == PV_DICT || target->kind == PV_SET) && target->o;
                        for (size_t i = x; i < vm->n_stack; i++) {
                                if (keep)
                                        pobj_add(vm, target->o, &vm->stack[i]);
                                else
                                        vm_drop(vm, &vm->stack[i]);
                        }
                        vm->n_stack = x;
                        break;
                }
                case 'g':       /* GET */
                case 'p': {     /* PUT */
                        int64_t idx;
                        bool big;
                        if (!(p = vm_readline(vm, &n)))
                                return;
                        if (!parse_decimal(p, n, &idx, &big) || big || idx < 0) {
                                vm_error(vm, at, op == 'g' ? "invalid GET argument" : "invalid PUT argument");
                                return;
                        }
                        if (op == 'g' ? !memo_get(vm, (uint64_t) idx) : !memo_put(vm, (uint64_t) idx))
                                return;
                        break;
                }
                case 'h':       /* BINGET */
                case 'q':       /* BINPUT */
                        if (!(p = vm_read(vm, 1)))
                                return;
                        if (op == 'h' ? !memo_get(vm, p[0]) : !memo_put(vm, p[0]))
                                return;
                        break;
                case 'j':       /* LONG_BINGET */
                case 'r':       /* LONG_BINPUT */
                        if (!(p = vm_read(vm, 4)))
                                return;
                        if (op == 'j' ? !memo_get(vm, le_uint(p, 4)) : !memo_put(vm, le_uint(p, 4)))
                                return;
                        break;
                case 0x94:      /* MEMOIZE */
                        if (!memo_put(vm, vm->memo_len))
                                return;
                        break;
                case 'c':       /* GLOBAL */
                case 'i': {     /* INST */
                        const uint8_t *m, *nm;
                        size_t ml, nl;
                        if (!(m = vm_readline(vm, &ml)) || !(nm = vm_readline(vm, &nl)))
                                return;
                        if (!vm->quiet && (!utf8_valid(m, ml) || !utf8_valid(nm, nl))) {
                                vm_error(vm, at, "GLOBAL name is not valid UTF-8");
                                return;
                        }
                        a = vm_import(vm, m, ml, nm, nl, op == 'c' ? VIA_GLOBAL : VIA_INST);
                        if (op == 'c') {
                                vm_push(vm, a);
                                break;
                        }
                        if ((n = vm_marker(vm)) == SIZE_MAX)
                                return;
                        if (!vm_pop_into(vm, n, PV_TUPLE, &b))
                                return;
                        vm_call(vm, &a, &b, "INST");
                        break;
                }
                case 0x93: {    /* STACK_GLOBAL */
                        if (!vm_pop(vm, &b) || !vm_pop(vm, &a))
                                return;
                        if (a.kind != PV_STR || b.kind != PV_STR || !a.s || !b.s) {
                                if (!vm->quiet) {
                                        vm_finding(vm, RULE_PICKLE_OBFUSCATION, SEV_HIGH,
                                                   "pickle: STACK_GLOBAL at offset %zu takes operands that are not constant strings",
                                                   at);
                                        /* CPython requires str operands: a non-str one
                                         * fails the load, a computed str one imports. */
                                        if ((a.kind != PV_STR && a.kind != PV_OBJ && a.kind != PV_GLOBAL) ||
                                            (b.kind != PV_STR && b.kind != PV_OBJ && b.kind != PV_GLOBAL)) {
                                                vm_drop(vm, &a);
                                                vm_drop(vm, &b);
                                                vm_error(vm, at, "STACK_GLOBAL requires str");
                                                return;
                                        }
                                }
                                vm->saw_import = true;
                                vm_drop(vm, &a);
                                vm_drop(vm, &b);
                                vm_push(vm, (struct pv) { .kind = PV_GLOBAL, .gidx = -1 });
                                break;
                        }
                        c = vm_import(vm, a.s, a.len, b.s, b.len, VIA_STACK_GLOBAL);
                        vm_push(vm, c);
                        break;
                }
                case 0x82:      /* EXT1 */
                case 0x83:      /* EXT2 */
                case 0x84: {    /* EXT4 */
                        size_t sz = op == 0x82 ? 1 : op == 0x83 ? 2 : 4;
                        if (!(p = vm_read(vm, sz)))
                                return;
                        uint64_t code = le_uint(p, sz);
                        if (op == 0x84 && (int32_t) code < 0) {
                                vm_error(vm, at, "negative EXT4 code");
                                return;
                        }
                        if (!vm->quiet) {
                                enum mg_via via = op == 0x82 ? VIA_EXT1 : op == 0x83 ? VIA_EXT2 : VIA_EXT4;
                                report_add_finding(vm->ctx->report, RULE_PICKLE_OBFUSCATION, SEV_HIGH, via,
                                                   vm->ctx->member, NULL,
                                                   "pickle: EXT code %llu at offset %zu imports through the copyreg extension registry",
                                                   (unsigned long long) code, at);
                        }
                        vm->saw_import = true;
                        vm_push(vm, (struct pv) { .kind = PV_GLOBAL, .gidx = -1 });
                        break;
                }
                case 'R':       /* REDUCE */
                        if (!vm_pop(vm, &b) || !vm_pop(vm, &a))
                                return;
                        vm_call(vm, &a, &b, "REDUCE");
                        break;
                case 0x81:      /* NEWOBJ */
                        if (!vm_pop(vm, &b) || !vm_pop(vm, &a))
                                return;
                        vm_call(vm, &a, &b, "NEWOBJ");
                        break;
                case 0x92:      /* NEWOBJ_EX */
                        if (!vm_pop(vm, &c) || !vm_pop(vm, &b) || !vm_pop(vm, &a))
                                return;
                        vm_drop(vm, &c);
                        vm_call(vm, &a, &b, "NEWOBJ_EX");
                        break;
                case 'o': {     /* OBJ */
                        if ((n = vm_marker(vm)) == SIZE_MAX)
                                return;
                        if (vm->n_stack - n < 1) {
                                vm_error(vm, at, "stack underflow on OBJ");
                                return;
                        }
                        if (!vm_pop_into(vm, n + 1, PV_TUPLE, &b))
                                return;
                        vm->n_stack--;
                        a = vm->stack[vm->n_stack];
                        vm_call(vm, &a, &b, "OBJ");
                        break;
                }
                case 'b':       /* BUILD */
                        vm_build(vm);
                        break;
                case 'P':       /* PERSID */
                        if (!vm_readline(vm, &n))
                                return;
                        vm_push(vm, (struct pv) { .kind = PV_PERSID });
                        break;
                case 'Q':       /* BINPERSID */
                        if (!vm_pop(vm, &a))
                                return;
                        vm_drop(vm, &a);
                        vm_push(vm, (struct pv) { .kind = PV_PERSID });
                        break;
                case 0x80: {    /* PROTO */
                        if (!(p = vm_read(vm, 1)))
                                return;
                        if (p[0] > PICKLE_HIGHEST_PROTOCOL) {
                                vm_error(vm, at, "unsupported pickle protocol");
                                return;
                        }
                        vm->proto = p[0];
                        break;
                }
                case 0x95: {    /* FRAME */
                        if (!(p = vm_read(vm, 8)))
                                return;
                        uint64_t fl = le_uint(p, 8);
                        if (fl > vm->len - vm->pos) {
                                vm_error(vm, at, "pickle data was truncated (FRAME longer than the data)");
                                return;
                        }
                        if (vm->frame_end && vm->pos < vm->frame_end && !vm->quiet)
                                vm_finding(vm, RULE_PICKLE_OBFUSCATION, SEV_HIGH,
                                           "pickle: a new frame begins at offset %zu before the frame ending at %zu ends",
                                           at, vm->frame_end);
                        vm->frame_end = vm->pos + (size_t) fl;
                        break;
                }
                case 0x97:      /* NEXT_BUFFER */
                        vm_error(vm, at, "pickle refers to out-of-band data (NEXT_BUFFER) but loaders give none");
                        return;
                case 0x98:      /* READONLY_BUFFER */
                        if (vm->n_stack <= vm->fence) {
                                vm_error(vm, at, "stack underflow on READONLY_BUFFER");
                                return;
                        }
                        break;
                default: {
                        char what[64];
                        snprintf(what, sizeof(what), "invalid load key 0x%02x", op);
                        vm_error(vm, at, what);
                        return;
                }
                }
        }
}

static void vm_init(struct vm *vm, struct scan_ctx *ctx, const uint8_t *buf, size_t len, bool quiet) {
        memset(vm, 0, sizeof(*vm));
        vm->ctx = ctx;
        vm->buf = buf;
        vm->len = len;
        vm->quiet = quiet;
        vm->import_names_valid = true;
        vm->objs.elem = sizeof(struct pobj);
        vm->mores.elem = (POBJ_KEEP - POBJ_INLINE) * sizeof(struct pv);
        if (!quiet)
                vm->gnames = calloc(PICKLE_GLOBALS_TRACKED, sizeof(*vm->gnames));
}

static void vm_free(struct vm *vm) {
        /* Every container lives in the pools: no walk over the memo is needed. */
        pool_destroy(&vm->objs);
        pool_destroy(&vm->mores);
        free(vm->stack);
        if (vm->memo)
                munmap(vm->memo, PICKLE_MEMO_MAX * sizeof(struct pv));
        free(vm->marks);
        free(vm->dead);
        free(vm->gnames);
        while (vm->arena) {
                struct arena_block *b = vm->arena;
                vm->arena = b->next;
                free(b);
        }
}

static void vm_fill_result(const struct vm *vm, struct pickle_result *ret, bool complete) {
        memset(ret, 0, sizeof(*ret));
        ret->consumed = vm->pos;
        ret->complete = complete;
        ret->error = vm->failed;
        ret->protocol = vm->proto;
        ret->joblib = vm->joblib;
        if (complete && (vm->result.kind == PV_INT || vm->result.kind == PV_BOOL)) {
                ret->result_is_int = true;
                int64_t v = vm->result.i;
                for (size_t i = 0; i < 8; i++)
                        ret->result_int_bytes[i] = (uint8_t) ((uint64_t) v >> (8 * i));
                ret->result_int_len = 8;
        } else if (complete && vm->result.kind == PV_BIGINT && vm->result.s &&
                   vm->result.len <= sizeof(ret->result_int_bytes)) {
                ret->result_is_int = true;
                ret->result_int_big = true;
                memcpy(ret->result_int_bytes, vm->result.s, vm->result.len);
                ret->result_int_len = vm->result.len;
        }
        if (complete && vm->result.kind == PV_TUPLE && vm->result.o && vm->result.o->n > 0 &&
            vm->result.o->n <= POBJ_KEEP) {
                const struct pv *last = pobj_get(vm->result.o, vm->result.o->n - 1);
                if (last->kind == PV_GLOBAL && last->gidx >= 0)
                        snprintf(ret->result_last_global, sizeof(ret->result_last_global), "%.*s",
                                 (int) sizeof(ret->result_last_global) - 1, vm->gnames[last->gidx].text);
        }
}

bool pickle_result_is_torch_magic(const struct pickle_result *r) {
        static const uint8_t magic[] = { 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };
        return r->result_is_int && r->result_int_len == sizeof(magic) &&
               memcmp(r->result_int_bytes, magic, sizeof(magic)) == 0;
}

static void vm_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len, enum frame_mode mode,
                    struct pickle_result *ret, bool *ret_straddled) {
        struct vm vm;

        vm_init(&vm, ctx, buf, len, false);
        vm.frame_mode = mode;
        if (!vm.gnames) {
                report_add_finding(ctx->report, RULE_SCAN_ERROR, SEV_HIGH, VIA_NONE, ctx->member, NULL,
                                   "pickle: out of memory");
                memset(ret, 0, sizeof(*ret));
                ret->error = true;
                return;
        }
        vm_run(&vm);
        bool complete = !vm.failed;
        vm_fill_result(&vm, ret, complete);
        if (ret_straddled)
                *ret_straddled = vm.frame_straddled;
        vm_free(&vm);
}

void pickle_scan_one(struct scan_ctx *ctx, const uint8_t *buf, size_t len, struct pickle_result *ret) {
        bool straddled = false;

        vm_scan(ctx, buf, len, FRAMES_SEQUENTIAL, ret, &straddled);
        if (straddled) {
                /* The other reading of the frames: what a loader that drops a frame's
                 * tail sees. Its imports are recorded too; the obfuscation finding is
                 * already there. */
                struct pickle_result other;
                vm_scan(ctx, buf, len, FRAMES_DISCARD, &other, NULL);
        }
}

static void vm_scan_embedded(struct vm *vm, const uint8_t *s, size_t n, const char *how) {
        struct scan_ctx *ctx = vm->ctx;
        char saved[REPORT_MEMBER_MAX];
        size_t off = s >= vm->buf && s < vm->buf + vm->len ? (size_t) (s - vm->buf) : vm->pos;

        if (ctx->depth + 1 >= SCAN_DEPTH_MAX) {
                report_add_finding(ctx->report, RULE_NESTED_PICKLE, SEV_HIGH, VIA_NONE, ctx->member, NULL,
                                   "pickle nested more than %d levels deep at offset %zu; not scanned further",
                                   SCAN_DEPTH_MAX, off);
                return;
        }
        memcpy(saved, ctx->member, sizeof(saved));
        if (saved[0])
                snprintf(ctx->member, sizeof(ctx->member), "%.100s/%s@%zu", saved, how, off);
        else
                snprintf(ctx->member, sizeof(ctx->member), "%s@%zu", how, off);
        report_add_finding(ctx->report, RULE_NESTED_PICKLE, SEV_MEDIUM, VIA_NONE, ctx->member, NULL,
                           "a %zu-byte pickle is embedded in a string constant; scanned as a member", n);
        ctx->depth++;
        pickle_scan_all(ctx, s, n);
        ctx->depth--;
        memcpy(ctx->member, saved, sizeof(saved));
}

bool pickle_sniff(const uint8_t *buf, size_t len) {
        struct vm vm;
        struct scan_ctx ctx = { 0 };

        if (len < 2)
                return false;
        /* Run a few opcodes quietly. A stream that stops cleanly, imports a name,
         * or runs the whole budget is a pickle; so is a PROTO-headed stream that
         * made some progress before failing (a truncated pickle). Text, and binary
         * formats that merely start with 0x80 (a PFB font: 0x80 0x01 and a length),
         * fail within a couple of opcodes having run nothing. */
        bool headered = buf[0] == 0x80 && buf[1] <= PICKLE_HIGHEST_PROTOCOL;
        vm_init(&vm, &ctx, buf, len, true);
        vm_run(&vm);
        bool stopped = !vm.failed && vm.opcodes <= PICKLE_SNIFF_OPCODES && vm.opcodes >= 2;
        bool ran = vm.opcodes > PICKLE_SNIFF_OPCODES;
        bool imported = vm.saw_import && (headered || vm.import_names_valid);
        bool progressed = headered && vm.opcodes > 3;
        bool limited = vm.limit_hit;   /* cannot tell: scan it, and report the limit */
        vm_free(&vm);
        return stopped || ran || imported || progressed || limited;
}

/* torch.serialization._legacy_load: magic, protocol version, sys_info, the data,
 * then the storage keys; raw storage bytes follow and are never unpickled. */
#define TORCH_LEGACY_STREAMS 5

enum mg_format pickle_scan_all(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        struct pickle_result res;
        enum mg_format fmt = FMT_PICKLE;
        size_t pos = 0;
        unsigned stream = 0;

        while (pos < len) {
                if (fmt == FMT_PYTORCH_LEGACY && stream >= TORCH_LEGACY_STREAMS)
                        break;
                if (stream > 0 && fmt != FMT_PYTORCH_LEGACY && !pickle_sniff(buf + pos, len - pos)) {
                        report_add_finding(ctx->report, RULE_MALFORMED, SEV_LOW, VIA_NONE, ctx->member, NULL,
                                           "%zu bytes after the pickle stream at offset %zu are not a pickle",
                                           len - pos, pos);
                        break;
                }
                pickle_scan_one(ctx, buf + pos, len - pos, &res);
                if (stream == 0 && res.joblib)
                        fmt = FMT_JOBLIB;
                if (stream == 0 && pickle_result_is_torch_magic(&res))
                        fmt = FMT_PYTORCH_LEGACY;
                stream++;
                pos += res.consumed;
                if (!res.complete || res.consumed == 0)
                        return fmt;
        }
        if (fmt == FMT_PYTORCH_LEGACY && stream < TORCH_LEGACY_STREAMS)
                report_add_finding(ctx->report, RULE_MALFORMED, SEV_HIGH, VIA_NONE, ctx->member, NULL,
                                   "legacy torch file ends after %u of its %d pickle streams", stream,
                                   TORCH_LEGACY_STREAMS);
        return fmt;
}
