/* convert-write.c — writes the safetensors file of a conversion plan. Runs in the
 * unprivileged front end, never in the worker: it opens the output, copies byte
 * ranges of the input (copy_file_range, or pread/pwrite, or a gather for strided
 * tensors), and knows nothing of pickles. Every offset it uses was validated
 * against the input's size by plan_tensor_check(). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* copy_file_range, sync_file_range, O_TMPFILE */
#endif
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert-write.h"
#include "report.h"

/* Bytes copied between two writeback kicks: the kernel starts writing each piece
 * while the next is copied, so the final fsync finds little left to do. */
#define WRITEBACK_CHUNK ((uint64_t) 64 << 20)

/* One copy_file_range call at most (the syscall takes size_t, the kernel caps
 * at ~2 GiB anyway). */
#define COPY_CALL_MAX ((size_t) 1 << 30)

/* pread/pwrite buffer when copy_file_range cannot be used, and the gather's output
 * buffer. */
#define COPY_BUF ((size_t) 8 << 20)

static int errf(char *err, size_t errsz, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int errf(char *err, size_t errsz, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
        return r;
}

/* ---- the header --------------------------------------------------------------- */

struct sbuf {
        char *p;
        size_t len, cap;
        bool failed;
};

static void sb_put(struct sbuf *b, const char *s, size_t n) {
        if (b->failed)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t nc = b->cap ? b->cap : 4096;
                while (nc < b->len + n + 1)
                        nc *= 2;
                char *p = realloc(b->p, nc);
                if (!p) {
                        b->failed = true;
                        return;
                }
                b->p = p;
                b->cap = nc;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s) {
        sb_put(b, s, strlen(s));
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...) {
        char tmp[128];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n > 0)
                sb_put(b, tmp, (size_t) n < sizeof(tmp) ? (size_t) n : sizeof(tmp) - 1);
}

/* A JSON string of printable UTF-8 (the plan guarantees no control characters). */
static void sb_json(struct sbuf *b, const char *s) {
        sb_put(b, "\"", 1);
        for (const char *p = s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        sb_put(b, "\\", 1);
                sb_put(b, p, 1);
        }
        sb_put(b, "\"", 1);
}

static const struct plan *sort_plan;

static int cmp_data_order(const void *a, const void *b) {
        const struct plan_tensor *x = &sort_plan->tensors[*(const size_t *) a];
        const struct plan_tensor *y = &sort_plan->tensors[*(const size_t *) b];
        unsigned sx = plan_dtype_size(x->dtype), sy = plan_dtype_size(y->dtype);
        if (sx != sy)
                return sx > sy ? -1 : 1;
        return strcmp(x->name, y->name);
}

static int cmp_meta_key(const void *a, const void *b) {
        const struct plan_meta *x = *(const struct plan_meta *const *) a, *y = *(const struct plan_meta *const *) b;
        return strcmp(x->key, y->key);
}

static int cmp_str_ptr(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static const char *tensor_name(const struct plan_tensor *t, const char *unnamed) {
        return t->name[0] ? t->name : unnamed;
}

int convert_layout(const struct plan *p, const char *unnamed, const char *license, struct convert_layout *ret,
                   char *err, size_t errsz) {
        struct convert_layout l = { 0 };
        struct sbuf b = { 0 };
        const struct plan_meta **keys = NULL;
        size_t n_keys = 0;
        uint64_t off = 0;
        int r = -EINVAL;

        if (p->n_tensors == 0)
                return errf(err, errsz, -EINVAL, "the plan holds no tensors");
        l.order = calloc(p->n_tensors, sizeof(*l.order));
        l.data_off = calloc(p->n_tensors, sizeof(*l.data_off));
        keys = calloc(p->n_meta ? p->n_meta : 1, sizeof(*keys));
        if (!l.order || !l.data_off || !keys) {
                r = errf(err, errsz, -ENOMEM, "out of memory");
                goto fail;
        }
        for (size_t i = 0; i < p->n_tensors; i++) {
                if (!p->tensors[i].name[0] && p->n_tensors > 1) {
                        errf(err, errsz, -EINVAL, "an unnamed tensor among %zu", p->n_tensors);
                        goto fail;
                }
                l.order[i] = i;
        }
        if (p->n_tensors == 1 && !p->tensors[0].name[0] && strcmp(unnamed, "__metadata__") == 0) {
                errf(err, errsz, -EINVAL, "a tensor cannot be named __metadata__");
                goto fail;
        }
        sort_plan = p;
        qsort(l.order, p->n_tensors, sizeof(*l.order), cmp_data_order);
        for (size_t i = 0; i < p->n_tensors; i++) {
                uint64_t nbytes;
                if (!plan_tensor_nbytes(&p->tensors[l.order[i]], &nbytes) || __builtin_add_overflow(off, nbytes, &off)) {
                        errf(err, errsz, -EINVAL, "the tensors add up to more than 2^64 bytes");
                        goto fail;
                }
                l.data_off[i] = off - nbytes;
        }
        l.data_len = off;
        for (size_t i = 0; i < p->n_tensors; i++) {
                const struct plan_tensor *t = &p->tensors[i];
                uint64_t extent;
                if (!plan_tensor_contiguous(t) && plan_tensor_extent(t, &extent) &&
                    extent * plan_dtype_size(t->dtype) > CONVERT_GATHER_MAX) {
                        errf(err, errsz, -EFBIG,
                             "'%s' is strided over %llu MiB of its storage, more than the %llu MiB the converter gathers",
                             tensor_name(t, unnamed), (unsigned long long) ((extent * plan_dtype_size(t->dtype)) >> 20),
                             (unsigned long long) (CONVERT_GATHER_MAX >> 20));
                        goto fail;
                }
        }
        {
                /* Unique tensor names. */
                const char **names = calloc(p->n_tensors, sizeof(*names));
                bool dup = false;
                if (!names) {
                        r = errf(err, errsz, -ENOMEM, "out of memory");
                        goto fail;
                }
                for (size_t i = 0; i < p->n_tensors; i++)
                        names[i] = p->tensors[i].name;
                qsort(names, p->n_tensors, sizeof(*names), cmp_str_ptr);
                for (size_t i = 1; i < p->n_tensors && !dup; i++)
                        dup = strcmp(names[i - 1], names[i]) == 0;
                free(names);
                if (dup) {
                        errf(err, errsz, -EINVAL, "two tensors have the same name");
                        goto fail;
                }
        }

        /* __metadata__: ours first, then the checkpoint's, sorted by key. */
        for (size_t i = 0; i < p->n_meta; i++)
                if (p->meta[i].kind != PM_DROPPED)
                        keys[n_keys++] = &p->meta[i];
        qsort(keys, n_keys, sizeof(*keys), cmp_meta_key);
        for (size_t i = 1; i < n_keys; i++)
                if (strcmp(keys[i - 1]->key, keys[i]->key) == 0) {
                        errf(err, errsz, -EINVAL, "metadata key '%s' twice", keys[i]->key);
                        goto fail;
                }

        sb_put(&b, "\0\0\0\0\0\0\0\0", 8);
        sb_str(&b, "{\"__metadata__\":{\"" PLAN_META_FORMAT "\":");
        sb_json(&b, p->format == FMT_NPY || p->format == FMT_NPZ ? "np" : "pt");
        sb_str(&b, ",\"" PLAN_META_SOURCE "\":");
        sb_json(&b, format_name((enum mg_format) p->format));
        sb_str(&b, ",\"" PLAN_META_SHA256 "\":\"");
        l.sha_at = b.len;
        sb_str(&b, "0000000000000000000000000000000000000000000000000000000000000000\"");
        if (license) {
                sb_str(&b, ",\"" PLAN_META_LICENSE "\":");
                sb_json(&b, license);
        }
        for (size_t i = 0; i < n_keys; i++) {
                sb_put(&b, ",", 1);
                sb_json(&b, keys[i]->key);
                sb_put(&b, ":", 1);
                sb_json(&b, keys[i]->value);
        }
        sb_put(&b, "}", 1);
        for (size_t i = 0; i < p->n_tensors; i++) {
                const struct plan_tensor *t = &p->tensors[l.order[i]];
                uint64_t nbytes;
                (void) plan_tensor_nbytes(t, &nbytes);
                sb_put(&b, ",", 1);
                sb_json(&b, tensor_name(t, unnamed));
                sb_str(&b, ":{\"dtype\":\"");
                sb_str(&b, plan_dtype_name(t->dtype));
                sb_str(&b, "\",\"shape\":[");
                for (unsigned d = 0; d < t->ndim; d++)
                        sb_printf(&b, "%s%llu", d ? "," : "", (unsigned long long) t->shape[d]);
                sb_printf(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long) l.data_off[i],
                          (unsigned long long) (l.data_off[i] + nbytes));
        }
        sb_put(&b, "}", 1);
        while (!b.failed && b.len % 8)
                sb_put(&b, " ", 1);
        if (b.failed) {
                r = errf(err, errsz, -ENOMEM, "out of memory");
                goto fail;
        }
        if (b.len - 8 > CONVERT_HEADER_MAX) {
                errf(err, errsz, -EINVAL, "the safetensors header would be %zu bytes, more than the %d a loader reads",
                     b.len - 8, CONVERT_HEADER_MAX);
                goto fail;
        }
        for (int i = 0; i < 8; i++)
                b.p[i] = (char) (uint8_t) ((uint64_t) (b.len - 8) >> (8 * i));
        l.header = b.p;
        l.header_len = b.len;
        free(keys);
        *ret = l;
        return 0;
fail:
        free(b.p);
        free(keys);
        convert_layout_free(&l);
        return r == -ENOMEM ? -ENOMEM : -EINVAL;
}

void convert_layout_free(struct convert_layout *l) {
        free(l->header);
        free(l->order);
        free(l->data_off);
        memset(l, 0, sizeof(*l));
}

void convert_set_sha256(struct convert_layout *l, const char sha256[65]) {
        memcpy(l->header + l->sha_at, sha256, 64);
}

/* ---- the output file ------------------------------------------------------------ */

int convert_out_open(const char *path, struct convert_out *ret, char *err, size_t errsz) {
        struct convert_out o = { .fd = -1, .dir_fd = -1 };
        char *d = strdup(path), *bn = strdup(path);
        mode_t mask;
        int r;

        if (!d || !bn) {
                free(d);
                free(bn);
                return errf(err, errsz, -ENOMEM, "out of memory");
        }
        o.base = strdup(basename(bn));
        free(bn);
        o.dir_fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = -errno;
        if (o.dir_fd < 0) {
                errf(err, errsz, r, "its directory %s: %s", d, strerror(-r));
                free(d);
                free(o.base);
                return r;
        }
        free(d);
        if (!o.base) {
                close(o.dir_fd);
                return errf(err, errsz, -ENOMEM, "out of memory");
        }
        /* Unnamed until it is complete: an interrupted conversion leaves nothing.
         * It becomes a name through /proc/self/fd, so that must be there too. */
        if (access("/proc/self/fd", X_OK) == 0)
                o.fd = openat(o.dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);
        if (o.fd < 0) {
                /* No O_TMPFILE here (or no /proc): a hidden name, removed on failure. */
                for (int attempt = 0; attempt < 100 && o.fd < 0; attempt++) {
                        snprintf(o.tmp, sizeof(o.tmp), ".modelgate-convert.%d.%d.tmp", (int) getpid(), attempt);
                        o.fd = openat(o.dir_fd, o.tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
                        if (o.fd < 0 && errno != EEXIST)
                                break;
                }
                if (o.fd < 0) {
                        r = -errno;
                        close(o.dir_fd);
                        free(o.base);
                        return errf(err, errsz, r, "cannot create a file in its directory: %s", strerror(-r));
                }
                o.named = true;
        }
        /* Permissions as a new file gets them (0666 less the umask). */
        mask = umask(0);
        umask(mask);
        if (fchmod(o.fd, 0666 & ~mask) < 0) { /* best effort: the create mode applied */ }
        *ret = o;
        return 0;
}

void convert_out_abort(struct convert_out *o) {
        if (o->fd >= 0) {
                close(o->fd);
                o->fd = -1;
        }
        if (o->named && o->dir_fd >= 0)
                unlinkat(o->dir_fd, o->tmp, 0);
        o->named = false;
        if (o->dir_fd >= 0) {
                close(o->dir_fd);
                o->dir_fd = -1;
        }
        free(o->base);
        o->base = NULL;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off) {
        const uint8_t *p = buf;
        while (n > 0) {
                ssize_t w = pwrite(fd, p, n, (off_t) off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return w < 0 ? -errno : -EIO;
                p += w;
                n -= (size_t) w;
                off += (uint64_t) w;
        }
        return 0;
}

/* -ENODATA when the input ends early: it shrank since the plan was made. */
static int pread_all(int fd, void *buf, size_t n, uint64_t off) {
        uint8_t *p = buf;
        while (n > 0) {
                ssize_t g = pread(fd, p, n, (off_t) off);
                if (g < 0 && errno == EINTR)
                        continue;
                if (g < 0)
                        return -errno;
                if (g == 0)
                        return -ENODATA;
                p += g;
                n -= (size_t) g;
                off += (uint64_t) g;
        }
        return 0;
}

struct copier {
        int in_fd, out_fd;
        bool no_cfr;              /* copy_file_range refused once: pread/pwrite from then on */
        uint8_t *buf;             /* COPY_BUF bytes, allocated on first need */
        uint64_t kicked;          /* output written back up to here */
        uint64_t written_end;
};

/* Starts writeback of what has been written since the last kick, in pieces. */
static void writeback_kick(struct copier *c, bool all) {
        while (c->written_end - c->kicked >= WRITEBACK_CHUNK || (all && c->written_end > c->kicked)) {
                uint64_t n = c->written_end - c->kicked;
                if (n > WRITEBACK_CHUNK)
                        n = WRITEBACK_CHUNK;
                /* A hint: where unsupported, the fsync does it all. */
                (void) sync_file_range(c->out_fd, (off_t) c->kicked, (off_t) n, SYNC_FILE_RANGE_WRITE);
                c->kicked += n;
        }
}

static int copy_range(struct copier *c, uint64_t src, uint64_t dst, uint64_t len) {
        int r;

        while (len > 0) {
                size_t n = len > WRITEBACK_CHUNK ? (size_t) WRITEBACK_CHUNK : (size_t) len;
                if (!c->no_cfr) {
                        loff_t in = (loff_t) src, out = (loff_t) dst;
                        ssize_t k = copy_file_range(c->in_fd, &in, c->out_fd, &out, n < COPY_CALL_MAX ? n : COPY_CALL_MAX, 0);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
                                      errno == EBADF || errno == EPERM)) {
                                c->no_cfr = true;
                                continue;
                        }
                        if (k < 0)
                                return -errno;
                        if (k == 0)
                                return -ENODATA;
                        n = (size_t) k;
                } else {
                        if (!c->buf && !(c->buf = malloc(COPY_BUF)))
                                return -ENOMEM;
                        if (n > COPY_BUF)
                                n = COPY_BUF;
                        if ((r = pread_all(c->in_fd, c->buf, n, src)) < 0 || (r = pwrite_all(c->out_fd, c->buf, n, dst)) < 0)
                                return r;
                }
                src += n;
                dst += n;
                len -= n;
                if (dst > c->written_end)
                        c->written_end = dst;
                writeback_kick(c, false);
        }
        return 0;
}

/* A strided tensor: the part of the storage it reads is read once, then its
 * elements are gathered in row-major order. */
static int gather(struct copier *c, const struct plan_tensor *t, uint64_t dst, char *err, size_t errsz) {
        unsigned es = plan_dtype_size(t->dtype);
        uint64_t extent, numel, span, idx[PLAN_DIMS_MAX] = { 0 }, src = 0;
        uint8_t *in;
        size_t o = 0;
        int r;

        if (!plan_tensor_extent(t, &extent) || !plan_tensor_numel(t, &numel))
                return errf(err, errsz, -EINVAL, "'%s': tensor extent overflows", t->name);
        span = extent * es;   /* checked against storage_len by plan_tensor_check() */
        if (span > CONVERT_GATHER_MAX)
                return errf(err, errsz, -EFBIG,
                            "'%s' is strided over %llu MiB of its storage, more than the %llu MiB the converter gathers",
                            t->name, (unsigned long long) (span >> 20), (unsigned long long) (CONVERT_GATHER_MAX >> 20));
        if (!c->buf && !(c->buf = malloc(COPY_BUF)))
                return -ENOMEM;
        in = malloc(span ? span : 1);
        if (!in)
                return errf(err, errsz, -ENOMEM, "out of memory gathering '%s'", t->name);
        r = pread_all(c->in_fd, in, span, t->storage_start + t->storage_offset * es);
        if (r < 0) {
                free(in);
                return r;
        }
        for (uint64_t k = 0; k < numel; k++) {
                memcpy(c->buf + o, in + src * es, es);
                o += es;
                if (o + es > COPY_BUF || k + 1 == numel) {
                        if ((r = pwrite_all(c->out_fd, c->buf, o, dst)) < 0)
                                break;
                        dst += o;
                        o = 0;
                }
                /* Next index, last dimension fastest. */
                for (unsigned d = t->ndim; d-- > 0;) {
                        if (++idx[d] < t->shape[d]) {
                                src += t->stride[d];
                                break;
                        }
                        src -= (t->shape[d] - 1) * t->stride[d];
                        idx[d] = 0;
                }
        }
        free(in);
        if (dst > c->written_end)
                c->written_end = dst;
        writeback_kick(c, false);
        return r;
}

int convert_copy_data(int in_fd, const struct plan *p, const struct convert_layout *l, struct convert_out *o,
                      char *err, size_t errsz) {
        struct copier c = { .in_fd = in_fd, .out_fd = o->fd, .kicked = l->header_len, .written_end = l->header_len };
        int r = 0;

        /* The file's final size up front: one extent allocation, no append races. */
        if (ftruncate(o->fd, (off_t) (l->header_len + l->data_len)) < 0)
                return errf(err, errsz, -errno, "cannot size the output: %s", strerror(errno));
        for (size_t i = 0; i < p->n_tensors && r == 0; i++) {
                const struct plan_tensor *t = &p->tensors[l->order[i]];
                uint64_t nbytes, dst = l->header_len + l->data_off[i];
                (void) plan_tensor_nbytes(t, &nbytes);
                if (nbytes == 0)
                        continue;
                if (plan_tensor_contiguous(t))
                        r = copy_range(&c, t->storage_start + t->storage_offset * plan_dtype_size(t->dtype), dst, nbytes);
                else
                        r = gather(&c, t, dst, err, errsz);
                if (r < 0 && !err[0])
                        errf(err, errsz, r, "copying '%s': %s", t->name[0] ? t->name : "(the array)",
                             r == -ENODATA ? "the input ended early (it changed while being converted)" : strerror(-r));
        }
        writeback_kick(&c, true);
        free(c.buf);
        /* The data on disk now, while the source hash is still being taken: the
         * commit's fsync then has only the header left to write. */
        if (r == 0 && fdatasync(o->fd) < 0)
                r = errf(err, errsz, -errno, "cannot flush the output to disk: %s", strerror(errno));
        return r;
}

int convert_out_commit(struct convert_out *o, const struct convert_layout *l, const char *path, bool force,
                       char *err, size_t errsz) {
        char proc[64], tmp[64];
        int r;

        if ((r = pwrite_all(o->fd, l->header, l->header_len, 0)) < 0)
                return errf(err, errsz, r, "cannot write the header: %s", strerror(-r));
        if (fsync(o->fd) < 0)
                return errf(err, errsz, -errno, "cannot flush the output to disk: %s", strerror(errno));
        if (!o->named) {
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", o->fd);
                if (!force) {
                        /* linkat fails if OUT appeared meanwhile: never clobbered. */
                        if (linkat(AT_FDCWD, proc, o->dir_fd, o->base, AT_SYMLINK_FOLLOW) < 0)
                                return errf(err, errsz, -errno, "cannot create %s: %s", path, strerror(errno));
                } else {
                        snprintf(tmp, sizeof(tmp), ".modelgate-convert.%d.tmp", (int) getpid());
                        unlinkat(o->dir_fd, tmp, 0);
                        if (linkat(AT_FDCWD, proc, o->dir_fd, tmp, AT_SYMLINK_FOLLOW) < 0)
                                return errf(err, errsz, -errno, "cannot link the output into its directory: %s",
                                            strerror(errno));
                        if (renameat(o->dir_fd, tmp, o->dir_fd, o->base) < 0) {
                                r = -errno;
                                unlinkat(o->dir_fd, tmp, 0);
                                return errf(err, errsz, r, "cannot replace %s: %s", path, strerror(-r));
                        }
                }
        } else if (!force) {
                if (linkat(o->dir_fd, o->tmp, o->dir_fd, o->base, 0) < 0)
                        return errf(err, errsz, -errno, "cannot create %s: %s", path, strerror(errno));
                unlinkat(o->dir_fd, o->tmp, 0);
                o->named = false;
        } else {
                if (renameat(o->dir_fd, o->tmp, o->dir_fd, o->base) < 0)
                        return errf(err, errsz, -errno, "cannot replace %s: %s", path, strerror(errno));
                o->named = false;
        }
        if (fsync(o->dir_fd) < 0) {
                r = -errno;
                if (!force)
                        unlinkat(o->dir_fd, o->base, 0);   /* ours: OUT must not exist after a failure */
                return errf(err, errsz, r, "cannot flush the directory of %s: %s", path, strerror(-r));
        }
        close(o->fd);
        o->fd = -1;
        close(o->dir_fd);
        o->dir_fd = -1;
        free(o->base);
        o->base = NULL;
        return 0;
}
