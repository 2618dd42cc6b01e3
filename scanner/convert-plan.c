/* convert-plan.c — the conversion plan's arithmetic, its encoding on the worker
 * socket and its strict decoding. The decoder assumes the worker is compromised:
 * every name, enum, count and byte range is checked before the front end uses it,
 * and a plan that reads outside the input is a protocol violation. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "convert-plan.h"
#include "worker-proto.h"

/* Plan messages share the worker message's union: they must not make every
 * message of every scan larger. */
_Static_assert(sizeof(struct plan_tensor) <= sizeof(struct finding) && sizeof(struct plan_meta) <= sizeof(struct finding) &&
               sizeof(struct plan_done) <= sizeof(struct finding),
               "a plan message outgrows the largest report message");

static const struct {
        const char *name;
        unsigned size;
} dtypes[_PD_MAX] = {
        [PD_BOOL] = { "BOOL", 1 }, [PD_U8] = { "U8", 1 },   [PD_I8] = { "I8", 1 },
        [PD_I16] = { "I16", 2 },   [PD_U16] = { "U16", 2 }, [PD_I32] = { "I32", 4 },
        [PD_U32] = { "U32", 4 },   [PD_I64] = { "I64", 8 }, [PD_U64] = { "U64", 8 },
        [PD_F16] = { "F16", 2 },   [PD_BF16] = { "BF16", 2 }, [PD_F32] = { "F32", 4 },
        [PD_F64] = { "F64", 8 },
};

unsigned plan_dtype_size(enum plan_dtype d) {
        return (unsigned) d < _PD_MAX ? dtypes[d].size : 0;
}

const char *plan_dtype_name(enum plan_dtype d) {
        return (unsigned) d < _PD_MAX ? dtypes[d].name : "?";
}

bool plan_meta_key_reserved(const char *key) {
        return strcmp(key, PLAN_META_FORMAT) == 0 || strcmp(key, PLAN_META_SHA256) == 0 ||
               strcmp(key, PLAN_META_LICENSE) == 0 || strcmp(key, PLAN_META_SOURCE) == 0;
}

void plan_init(struct plan *p) {
        memset(p, 0, sizeof(*p));
}

void plan_free(struct plan *p) {
        free(p->tensors);
        free(p->meta);
        plan_init(p);
}

int plan_fail(struct plan *p, int error, const char *fmt, ...) {
        char raw[REPORT_MESSAGE_MAX];
        va_list ap;

        if (p->error)
                return p->error;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        report_escape(p->message, sizeof(p->message), (const uint8_t *) raw, strlen(raw), NULL);
        p->error = error;
        return error;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem, size_t max) {
        if (n < *cap)
                return 0;
        if (n >= max)
                return -ENOSPC;
        size_t nc = *cap ? *cap * 2 : 64;
        if (nc > max)
                nc = max;
        void *a = realloc(*arr, nc * elem);
        if (!a)
                return -ENOMEM;
        *arr = a;
        *cap = nc;
        return 0;
}

int plan_add_tensor(struct plan *p, const struct plan_tensor *t) {
        int r = grow((void **) &p->tensors, &p->cap_tensors, p->n_tensors, sizeof(*t), PLAN_TENSORS_MAX);
        if (r < 0)
                return r;
        p->tensors[p->n_tensors++] = *t;
        return 0;
}

int plan_add_meta(struct plan *p, enum plan_meta_kind kind, const char *key, const char *value) {
        struct plan_meta *m;
        int r = grow((void **) &p->meta, &p->cap_meta, p->n_meta, sizeof(*m), PLAN_META_MAX);
        if (r < 0)
                return r;
        m = &p->meta[p->n_meta++];
        memset(m, 0, sizeof(*m));
        m->kind = (uint8_t) kind;
        snprintf(m->key, sizeof(m->key), "%s", key);
        snprintf(m->value, sizeof(m->value), "%s", value);
        return 0;
}

static bool mul64(uint64_t a, uint64_t b, uint64_t *ret) {
        return !__builtin_mul_overflow(a, b, ret);
}

static bool add64(uint64_t a, uint64_t b, uint64_t *ret) {
        return !__builtin_add_overflow(a, b, ret);
}

bool plan_tensor_numel(const struct plan_tensor *t, uint64_t *ret) {
        uint64_t n = 1;
        for (unsigned i = 0; i < t->ndim && i < PLAN_DIMS_MAX; i++)
                if (!mul64(n, t->shape[i], &n))
                        return false;
        *ret = n;
        return true;
}

bool plan_tensor_nbytes(const struct plan_tensor *t, uint64_t *ret) {
        uint64_t n;
        return plan_tensor_numel(t, &n) && mul64(n, plan_dtype_size(t->dtype), ret);
}

bool plan_tensor_contiguous(const struct plan_tensor *t) {
        uint64_t expect = 1, numel;

        if (!plan_tensor_numel(t, &numel) || numel == 0)
                return true;
        /* As torch's is_contiguous(): dimensions of size 1 may have any stride. */
        for (unsigned i = t->ndim; i-- > 0;) {
                if (t->shape[i] != 1 && t->stride[i] != expect)
                        return false;
                expect *= t->shape[i];   /* cannot overflow: bounded by numel */
        }
        return true;
}

bool plan_tensor_extent(const struct plan_tensor *t, uint64_t *ret) {
        uint64_t numel, last = 0;

        if (!plan_tensor_numel(t, &numel))
                return false;
        if (numel == 0) {
                *ret = 0;
                return true;
        }
        for (unsigned i = 0; i < t->ndim; i++) {
                uint64_t span;
                if (!mul64(t->shape[i] - 1, t->stride[i], &span) || !add64(last, span, &last))
                        return false;
        }
        return add64(last, 1, ret);
}

/* Valid UTF-8, no control characters, terminated inside its array. */
static bool name_ok(const char *s, size_t size) {
        return memchr(s, '\0', size) && report_string_valid(s);
}

const char *plan_tensor_check(const struct plan_tensor *t, uint64_t input_size) {
        uint64_t numel, extent, end, need, unused = 0;
        unsigned es = plan_dtype_size(t->dtype);

        if (!name_ok(t->name, sizeof(t->name)))
                return "tensor name not terminated or not printable UTF-8";
        if (strcmp(t->name, "__metadata__") == 0)
                return "tensor named __metadata__";
        if (t->dtype >= _PD_MAX)
                return "unknown dtype";
        if (t->ndim > PLAN_DIMS_MAX)
                return "too many dimensions";
        for (unsigned i = t->ndim; i < PLAN_DIMS_MAX; i++)
                unused |= t->shape[i] | t->stride[i];
        for (unsigned i = 0; i < sizeof(t->reserved); i++)
                unused |= t->reserved[i];
        if (unused)
                return "unused dimension fields are not zero";
        if (!plan_tensor_numel(t, &numel) || !mul64(numel, es, &need))
                return "tensor size overflows 64 bits";
        if (!add64(t->storage_start, t->storage_len, &end) || end > input_size)
                return "storage range outside the input file";
        if (!plan_tensor_extent(t, &extent))
                return "tensor extent overflows 64 bits";
        if (numel > 0) {
                uint64_t last, bytes;
                if (!add64(t->storage_offset, extent, &last) || !mul64(last, es, &bytes) ||
                    bytes > t->storage_len)
                        return "tensor reads past the end of its storage";
        }
        return NULL;
}

/* ---- on the socket ---------------------------------------------------------- */

static int send_msg(int fd, const struct wp_msg *m) {
        struct iovec iov = { .iov_base = (void *) m, .iov_len = sizeof(*m) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;
        do
                n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return n == (ssize_t) sizeof(*m) ? 0 : -EIO;
}

static void msg_start(struct wp_msg *m, enum wp_type type, uint64_t job) {
        memset(m, 0, sizeof(*m));
        m->magic = WORKER_MAGIC;
        m->type = type;
        m->job = job;
}

int wp_send_plan(int fd, uint64_t job, const struct plan *p) {
        struct wp_msg m;
        int r;
        size_t nt = p->error ? 0 : p->n_tensors, nm = p->error ? 0 : p->n_meta;

        for (size_t i = 0; i < nt; i++) {
                msg_start(&m, WP_PLAN_TENSOR, job);
                m.u.plan_tensor = p->tensors[i];
                if ((r = send_msg(fd, &m)) < 0)
                        return r;
        }
        for (size_t i = 0; i < nm; i++) {
                msg_start(&m, WP_PLAN_META, job);
                m.u.plan_meta = p->meta[i];
                if ((r = send_msg(fd, &m)) < 0)
                        return r;
        }
        msg_start(&m, WP_PLAN_DONE, job);
        m.u.plan_done.error = p->error;
        m.u.plan_done.format = p->format;
        m.u.plan_done.n_tensors = (uint32_t) nt;
        m.u.plan_done.n_meta = (uint32_t) nm;
        m.u.plan_done.dropped_unlisted = p->dropped_unlisted;
        memcpy(m.u.plan_done.message, p->message, sizeof(m.u.plan_done.message));
        return send_msg(fd, &m);
}

void plan_receiver_start(struct plan_receiver *rx, uint64_t job, uint64_t input_size, struct plan *p) {
        memset(rx, 0, sizeof(*rx));
        rx->job = job;
        rx->input_size = input_size;
        rx->plan = p;
        plan_free(p);
}

static int violation(struct plan_receiver *rx, const char *what) {
        struct plan *p = rx->plan;
        p->error = 0;
        plan_fail(p, -EBADMSG, "the worker sent an invalid conversion plan: %s", what);
        return -EBADMSG;
}

int plan_receiver_feed(struct plan_receiver *rx, const void *msg, size_t len) {
        struct plan *p = rx->plan;
        struct wp_msg m;
        const char *bad;
        int r;

        if (rx->done || len != sizeof(m))
                return violation(rx, "wrong message size");
        memcpy(&m, msg, sizeof(m));
        if (m.magic != WORKER_MAGIC || m.job != rx->job)
                return violation(rx, "wrong magic or job");

        switch (m.type) {
        case WP_PLAN_TENSOR:
                if (p->n_meta > 0)
                        return violation(rx, "tensor after metadata");
                if ((bad = plan_tensor_check(&m.u.plan_tensor, rx->input_size)))
                        return violation(rx, bad);
                r = plan_add_tensor(p, &m.u.plan_tensor);
                if (r == -ENOSPC)
                        return violation(rx, "too many tensors");
                return r;
        case WP_PLAN_META: {
                const struct plan_meta *pm = &m.u.plan_meta;
                if (pm->kind >= _PM_MAX || !name_ok(pm->key, sizeof(pm->key)) || !pm->key[0] ||
                    !name_ok(pm->value, sizeof(pm->value)))
                        return violation(rx, "metadata entry not terminated, empty or not printable");
                if (pm->kind != PM_DROPPED && plan_meta_key_reserved(pm->key))
                        return violation(rx, "metadata entry with a reserved key");
                r = plan_add_meta(p, (enum plan_meta_kind) pm->kind, pm->key, pm->value);
                if (r == -ENOSPC)
                        return violation(rx, "too many metadata entries");
                return r;
        }
        case WP_PLAN_DONE: {
                const struct plan_done *d = &m.u.plan_done;
                if (d->n_tensors != p->n_tensors || d->n_meta != p->n_meta || d->format >= _FMT_MAX ||
                    d->error > 0 || d->error < -4095 || !name_ok(d->message, sizeof(d->message)) ||
                    (d->error && (p->n_tensors || p->n_meta)))
                        return violation(rx, "counts, format or error out of range");
                p->format = d->format;
                p->dropped_unlisted = d->dropped_unlisted;
                p->error = d->error;
                memcpy(p->message, d->message, sizeof(p->message));
                rx->done = true;
                return 1;
        }
        default:
                return violation(rx, "unexpected message type");
        }
}
