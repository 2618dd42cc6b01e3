/* hdf5.c — reads an HDF5 file's superblock, the root group's object header and the
 * attributes in it, as far as Keras needs them (model_config, training_config).
 * Never reads datasets, B-trees or fractal heaps: what it cannot see it reports. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "hdf5.h"
#include "json.h"
#include "keras.h"

/* Chunks of one object header (the first plus its continuations). The library has
 * no limit; a root group that gained attributes one at a time has a handful. */
#define HDF5_CHUNKS_MAX 1024

/* model_config/training_config attributes parsed per file. HDF5 refuses two
 * attributes of one name, so a real file has at most one of each; copies (chunks
 * that overlap, several messages naming one heap string) are not parsed again. */
#define HDF5_KERAS_ATTRS_MAX 4

/* Messages read across those chunks: v1 headers count theirs in 16 bits. */
#define HDF5_MESSAGES_MAX 65536

/* H5S_MAX_RANK. */
#define HDF5_RANK_MAX 32

#define HDF5_UNDEF UINT64_MAX

#define MSG_NIL            0x0000
#define MSG_ATTRIBUTE      0x000C
#define MSG_CONTINUATION   0x0010
#define MSG_ATTRIBUTE_INFO 0x0015

#define MSG_FLAG_SHARED 0x02

#define DT_STRING 3
#define DT_VLEN   9

struct h5_chunk {
        uint64_t addr;            /* absolute offset in buf of the message area */
        uint64_t size;
};

struct h5 {
        struct scan_ctx *ctx;
        const uint8_t *buf;
        size_t len;
        uint64_t base;            /* where the superblock is: addresses count from it */
        uint8_t sb_version;
        uint8_t osz, lsz;         /* sizes of offsets and lengths */
        uint8_t oh_version;
        bool oh_crt_order;        /* v2 header: messages carry a creation order */
        struct h5_chunk chunks[HDF5_CHUNKS_MAX];
        size_t n_chunks;
        size_t n_messages;
        bool model_config;        /* a model_config attribute was seen */
        unsigned n_keras_attrs;   /* model_config and training_config attributes read */
        bool failed;              /* a structural error was reported; stop */
};

static void h5_malformed(struct h5 *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void h5_malformed(struct h5 *h, const char *fmt, ...) {
        char msg[REPORT_MESSAGE_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        scan_finding(h->ctx, RULE_MALFORMED, SEV_HIGH, "hdf5: %s", msg);
        h->failed = true;
}

static uint64_t align8(uint64_t n) {
        return (n + 7) & ~(uint64_t) 7;
}

/* A little-endian unsigned integer of 1, 2, 4 or 8 bytes. */
static int h5_uint(struct cursor *c, unsigned size, uint64_t *ret) {
        const uint8_t *p;
        uint64_t v = 0;
        int r = cursor_take(c, size, &p);

        if (r < 0)
                return r;
        for (unsigned i = size; i > 0; i--)
                v = v << 8 | p[i - 1];
        *ret = v;
        return 0;
}

/* An address (size of offsets); all ones is the undefined address. */
static int h5_addr(const struct h5 *h, struct cursor *c, uint64_t *ret) {
        uint64_t v;
        int r = h5_uint(c, h->osz, &v);

        if (r < 0)
                return r;
        *ret = h->osz == 8 ? v : v == (UINT64_C(1) << (8 * h->osz)) - 1 ? HDF5_UNDEF : v;
        return 0;
}

static int h5_length(const struct h5 *h, struct cursor *c, uint64_t *ret) {
        return h5_uint(c, h->lsz, ret);
}

/* [base+addr, base+addr+size) of the file as a cursor; -ENODATA when it does not
 * lie inside the file or addr is undefined. */
static int h5_region(const struct h5 *h, uint64_t addr, uint64_t size, struct cursor *ret) {
        if (addr == HDF5_UNDEF || addr > UINT64_MAX - h->base)
                return -ENODATA;
        addr += h->base;
        if (addr > h->len || size > h->len - addr)
                return -ENODATA;
        *ret = cursor_make(h->buf + addr, (size_t) size);
        return 0;
}

bool hdf5_find_superblock(const uint8_t *buf, size_t len, uint64_t *ret_offset) {
        for (uint64_t off = 0; off <= len && len - off >= HDF5_SIGNATURE_LEN; off = off ? off * 2 : 512)
                if (memcmp(buf + off, HDF5_SIGNATURE, HDF5_SIGNATURE_LEN) == 0) {
                        *ret_offset = off;
                        return true;
                }
        return false;
}

bool hdf5_sniff(const uint8_t *buf, size_t len) {
        return len >= HDF5_SIGNATURE_LEN && memcmp(buf, HDF5_SIGNATURE, HDF5_SIGNATURE_LEN) == 0;
}

bool hdf5_sniff_userblock(const uint8_t *buf, size_t len) {
        uint64_t off;

        return hdf5_find_superblock(buf, len, &off) && off > 0;
}

/* ---- superblock ---- */

static int superblock_read(struct h5 *h, uint64_t *ret_root) {
        struct cursor c = cursor_make(h->buf, h->len);
        uint64_t base_field, eof, root = HDF5_UNDEF, ignore;
        uint8_t b;

        if (cursor_seek(&c, (size_t) h->base) < 0 || cursor_skip(&c, HDF5_SIGNATURE_LEN) < 0 ||
            cursor_u8(&c, &h->sb_version) < 0)
                goto truncated;
        if (h->sb_version > 3) {
                h5_malformed(h, "superblock version %u at offset %llu; versions 0 to 3 exist",
                             h->sb_version, (unsigned long long) h->base);
                return -EBADMSG;
        }
        if (h->sb_version <= 1) {
                /* free-space, root symbol table entry and shared-header versions,
                 * reserved, then the sizes. */
                if (cursor_skip(&c, 4) < 0 || cursor_u8(&c, &h->osz) < 0 || cursor_u8(&c, &h->lsz) < 0 ||
                    cursor_skip(&c, 1 + 2 + 2 + 4) < 0 || (h->sb_version == 1 && cursor_skip(&c, 4) < 0))
                        goto truncated;
        } else if (cursor_u8(&c, &h->osz) < 0 || cursor_u8(&c, &h->lsz) < 0 || cursor_u8(&c, &b) < 0)
                goto truncated;
        if ((h->osz != 2 && h->osz != 4 && h->osz != 8) || (h->lsz != 2 && h->lsz != 4 && h->lsz != 8)) {
                h5_malformed(h, "superblock gives %u-byte offsets and %u-byte lengths; HDF5 allows 2, 4 or 8",
                             h->osz, h->lsz);
                return -EBADMSG;
        }
        if (h->sb_version <= 1) {
                /* base, free-space info, end of file, driver info; then the root
                 * group's symbol table entry: link name offset, object header. */
                if (h5_addr(h, &c, &base_field) < 0 || h5_addr(h, &c, &ignore) < 0 || h5_addr(h, &c, &eof) < 0 ||
                    h5_addr(h, &c, &ignore) < 0 || h5_addr(h, &c, &ignore) < 0 || h5_addr(h, &c, &root) < 0 ||
                    cursor_skip(&c, 4 + 4 + 16) < 0)
                        goto truncated;
        } else {
                /* base, superblock extension, end of file, root object header, checksum. */
                if (h5_addr(h, &c, &base_field) < 0 || h5_addr(h, &c, &ignore) < 0 || h5_addr(h, &c, &eof) < 0 ||
                    h5_addr(h, &c, &root) < 0 || cursor_skip(&c, 4) < 0)
                        goto truncated;
        }
        /* The library counts every address from where it found the superblock,
         * whatever the base address field says, and moves the stored end of file
         * by the same distance (H5F__super_read); a file shorter than that end is
         * refused as truncated. */
        if (eof != HDF5_UNDEF && base_field != HDF5_UNDEF) {
                uint64_t end = eof - base_field + h->base;   /* modulo 2^64, as the library */
                if (eof >= base_field && (end < eof - base_field || end > h->len)) {
                        h5_malformed(h, "file is truncated: the superblock says it ends at byte %llu, the file has %zu bytes",
                                     (unsigned long long) end, h->len);
                        return -EBADMSG;
                }
        }
        if (root == HDF5_UNDEF) {
                h5_malformed(h, "superblock has no root group address");
                return -EBADMSG;
        }
        *ret_root = root;
        return 0;

truncated:
        h5_malformed(h, "file ends inside the superblock (version %u at offset %llu, %zu bytes in the file)",
                     h->sb_version, (unsigned long long) h->base, h->len);
        return -EBADMSG;
}

/* ---- attribute values ---- */

struct h5_type {
        uint8_t class, version;
        uint32_t bits;            /* the 24 class bit-field bits */
        uint32_t size;
};

static int datatype_read(struct cursor *c, struct h5_type *ret) {
        uint8_t b0;
        uint64_t bits, size;

        if (cursor_u8(c, &b0) < 0 || h5_uint(c, 3, &bits) < 0 || h5_uint(c, 4, &size) < 0)
                return -ENODATA;
        ret->class = b0 & 0x0f;
        ret->version = b0 >> 4;
        ret->bits = (uint32_t) bits;
        ret->size = (uint32_t) size;
        return 0;
}

/* Elements of a dataspace message; -EBADMSG with why. */
static int dataspace_count(const struct h5 *h, struct cursor *c, uint64_t *ret, const char **why) {
        uint8_t version, rank, flags, type = 1;
        uint64_t n = 1;

        if (cursor_u8(c, &version) < 0 || cursor_u8(c, &rank) < 0 || cursor_u8(c, &flags) < 0)
                goto truncated;
        if (version == 1) {
                if (cursor_skip(c, 5) < 0)
                        goto truncated;
        } else if (version == 2) {
                if (cursor_u8(c, &type) < 0)
                        goto truncated;
        } else {
                *why = "unknown dataspace version";
                return -EBADMSG;
        }
        if (rank > HDF5_RANK_MAX) {
                *why = "dataspace rank above 32";
                return -EBADMSG;
        }
        if (type == 2) {
                *ret = 0;    /* null dataspace */
                return 0;
        }
        if (type > 2) {
                *why = "unknown dataspace type";
                return -EBADMSG;
        }
        for (unsigned i = 0; i < rank; i++) {
                uint64_t d;
                if (h5_length(h, c, &d) < 0)
                        goto truncated;
                if (d != 0 && n > UINT64_MAX / d) {
                        *why = "dataspace size overflows 64 bits";
                        return -EBADMSG;
                }
                n *= d;
        }
        *ret = type == 0 ? 1 : n;
        return 0;

truncated:
        *why = "dataspace message is cut short";
        return -EBADMSG;
}

/* Object `index` of the global heap collection at `addr`: the last object with that
 * index, as the library's heap cache keeps it. */
static int global_heap_object(struct h5 *h, uint64_t addr, uint32_t index, struct cursor *ret, const char **why) {
        struct cursor c, head;
        uint64_t coll_size, found_at = 0, found_size = 0;
        bool found = false;
        const uint8_t *sig;
        uint8_t version;

        if (h5_region(h, addr, 8 + h->lsz, &head) < 0) {
                *why = "its global heap collection lies outside the file";
                return -EBADMSG;
        }
        if (cursor_take(&head, 4, &sig) < 0 || memcmp(sig, "GCOL", 4) != 0) {
                *why = "no global heap collection (GCOL) where its string should be";
                return -EBADMSG;
        }
        (void) cursor_u8(&head, &version);
        (void) cursor_skip(&head, 3);
        (void) h5_length(h, &head, &coll_size);
        if (version != 1) {
                *why = "global heap collection of an unknown version";
                return -EBADMSG;
        }
        if (coll_size < 8 + (uint64_t) h->lsz || h5_region(h, addr, coll_size, &c) < 0) {
                *why = "global heap collection size does not fit the file";
                return -EBADMSG;
        }
        (void) cursor_skip(&c, 8 + h->lsz);
        for (;;) {
                uint64_t idx, size;
                if (h5_uint(&c, 2, &idx) < 0 || cursor_skip(&c, 2 + 4) < 0 || h5_length(h, &c, &size) < 0)
                        break;   /* no room for another object header */
                if (idx == 0)
                        break;   /* the free space: the rest of the collection */
                if (size > cursor_left(&c)) {
                        *why = "global heap object runs past its collection";
                        return -EBADMSG;
                }
                if (idx == index) {
                        found = true;
                        found_at = c.pos;
                        found_size = size;
                }
                if (cursor_skip(&c, align8(size) <= cursor_left(&c) ? (size_t) align8(size) : cursor_left(&c)) < 0)
                        break;
        }
        if (!found) {
                *why = "its global heap object is missing";
                return -EBADMSG;
        }
        return cursor_slice(&c, (size_t) found_at, (size_t) found_size, ret) < 0 ? -EBADMSG : 0;
}

/* The one string an attribute holds, as h5py hands it to Keras. */
static int attribute_string(struct h5 *h, const struct h5_type *t, uint64_t count, struct cursor *data,
                            const uint8_t **ret, size_t *ret_len, const char **why) {
        if (t->class != DT_STRING && !(t->class == DT_VLEN && (t->bits & 0x0f) == 1)) {
                *why = "it is not a string";
                return -EBADMSG;
        }
        if (count != 1) {
                *why = count == 0 ? "it holds no value" : "it holds more than one string";
                return -EBADMSG;
        }
        if (t->class == DT_STRING) {
                const uint8_t *p;
                size_t n;
                if (cursor_take(data, t->size, &p) < 0) {
                        *why = "its value is cut short";
                        return -EBADMSG;
                }
                n = t->size;
                if ((t->bits & 0x0f) == 0) {
                        /* null-terminated: HDF5's conversion stops at the first NUL */
                        const uint8_t *nul = memchr(p, 0, n);
                        if (nul)
                                n = (size_t) (nul - p);
                } else
                        while (n > 0 && p[n - 1] == 0)   /* numpy strips trailing NULs */
                                n--;
                *ret = p;
                *ret_len = n;
                return 0;
        }

        uint64_t seq_len, addr, index;
        struct cursor obj;
        const uint8_t *p;
        int r;

        if (h5_uint(data, 4, &seq_len) < 0 || h5_addr(h, data, &addr) < 0 || h5_uint(data, 4, &index) < 0) {
                *why = "its value is cut short";
                return -EBADMSG;
        }
        if (seq_len == 0) {
                *ret = (const uint8_t *) "";
                *ret_len = 0;
                return 0;
        }
        r = global_heap_object(h, addr, (uint32_t) index, &obj, why);
        if (r < 0)
                return r;
        if (cursor_take(&obj, seq_len, &p) < 0) {
                *why = "its global heap object is shorter than the string";
                return -EBADMSG;
        }
        *ret = p;
        *ret_len = (size_t) seq_len;
        return 0;
}

enum keras_attr {
        ATTR_OTHER,
        ATTR_MODEL_CONFIG,
        ATTR_TRAINING_CONFIG,
};

/* The attribute's name as the library reads it: up to the first NUL. A name with no
 * NUL in name_size bytes is judged by its bytes too (fail closed). */
static enum keras_attr attribute_kind(const uint8_t *name, size_t size) {
        const uint8_t *nul = memchr(name, 0, size);
        size_t n = nul ? (size_t) (nul - name) : size;

        if (n == 12 && memcmp(name, "model_config", 12) == 0)
                return ATTR_MODEL_CONFIG;
        if (n == 15 && memcmp(name, "training_config", 15) == 0)
                return ATTR_TRAINING_CONFIG;
        return ATTR_OTHER;
}

static void keras_attribute(struct h5 *h, enum keras_attr kind, const uint8_t *s, size_t n) {
        const char *attr = kind == ATTR_MODEL_CONFIG ? "model_config" : "training_config";
        struct json_doc *doc = NULL;
        char err[160];
        int r;

        r = keras_json_parse(s, n, &doc, err, sizeof(err));
        if (r == -EBADMSG) {
                /* Keras would fail on it too: for model_config that is still a
                 * config modelgate could not check (fail closed); training_config
                 * is only read after the model is built. */
                scan_finding(h->ctx, RULE_MALFORMED, kind == ATTR_MODEL_CONFIG ? SEV_HIGH : SEV_MEDIUM,
                             "hdf5: the %s attribute is not valid JSON (%s)", attr, err);
                return;
        }
        if (r < 0) {
                scan_finding(h->ctx, RULE_SCAN_ERROR, SEV_HIGH, "hdf5: the %s attribute was not checked (%s)", attr,
                             r == -ENOMEM ? "out of memory" : err);
                return;
        }
        keras_config_scan(h->ctx, json_root(doc));
        json_free(doc);
}

static void attribute_message(struct h5 *h, struct cursor *m) {
        uint8_t version, flags = 0, encoding = 0;
        uint16_t name_size, dt_size, ds_size;
        const uint8_t *name, *dt_bytes, *ds_bytes;
        enum keras_attr kind;
        struct h5_type t;
        struct cursor dt, ds;
        uint64_t count;
        const char *why = NULL;
        const uint8_t *s;
        size_t n;
        bool pad;

        if (cursor_u8(m, &version) < 0 || cursor_u8(m, &flags) < 0 || cursor_le16(m, &name_size) < 0 ||
            cursor_le16(m, &dt_size) < 0 || cursor_le16(m, &ds_size) < 0) {
                h5_malformed(h, "attribute message in the root group is cut short");
                return;
        }
        if (version < 1 || version > 3) {
                h5_malformed(h, "attribute message version %u in the root group; versions 1 to 3 exist", version);
                return;
        }
        if (version == 3 && cursor_u8(m, &encoding) < 0) {
                h5_malformed(h, "attribute message in the root group is cut short");
                return;
        }
        pad = version == 1;   /* version 1 pads name, datatype and dataspace to 8 bytes */
        if (cursor_take(m, name_size, &name) < 0 || (pad && cursor_skip(m, align8(name_size) - name_size) < 0) ||
            cursor_take(m, dt_size, &dt_bytes) < 0 || (pad && cursor_skip(m, align8(dt_size) - dt_size) < 0) ||
            cursor_take(m, ds_size, &ds_bytes) < 0 || (pad && cursor_skip(m, align8(ds_size) - ds_size) < 0)) {
                h5_malformed(h, "attribute in the root group is larger than its message (%u-byte name, %u-byte datatype, %u-byte dataspace, %zu bytes in the message)",
                             name_size, dt_size, ds_size, m->len);
                return;
        }
        (void) encoding;
        kind = attribute_kind(name, name_size);
        if (kind == ATTR_OTHER)
                return;
        if (kind == ATTR_MODEL_CONFIG)
                h->model_config = true;
        if (++h->n_keras_attrs > HDF5_KERAS_ATTRS_MAX) {
                if (h->n_keras_attrs == HDF5_KERAS_ATTRS_MAX + 1)
                        scan_finding(h->ctx, RULE_MALFORMED, SEV_HIGH,
                                     "hdf5: the root group has more than %d model_config/training_config attributes; HDF5 never writes two of one name, the rest were not read",
                                     HDF5_KERAS_ATTRS_MAX);
                return;
        }

        dt = cursor_make(dt_bytes, dt_size);
        ds = cursor_make(ds_bytes, ds_size);
        if (version >= 2 && (flags & 0x03))
                why = "its datatype or dataspace is a shared (committed) object, which modelgate does not follow";
        else if (datatype_read(&dt, &t) < 0)
                why = "its datatype message is cut short";
        else if (dataspace_count(h, &ds, &count, &why) == 0 &&
                 attribute_string(h, &t, count, m, &s, &n, &why) == 0) {
                keras_attribute(h, kind, s, n);
                return;
        }
        scan_finding(h->ctx, RULE_MALFORMED, kind == ATTR_MODEL_CONFIG ? SEV_HIGH : SEV_MEDIUM,
                     "hdf5: the %s attribute cannot be read: %s", kind == ATTR_MODEL_CONFIG ? "model_config" : "training_config",
                     why);
}

/* ---- the root group's object header ---- */

static int chunk_add(struct h5 *h, uint64_t abs, uint64_t size) {
        for (size_t i = 0; i < h->n_chunks; i++)
                if (h->chunks[i].addr == abs) {
                        h5_malformed(h, "object header continuation loops back to the chunk at offset %llu",
                                     (unsigned long long) abs);
                        return -ELOOP;
                }
        if (h->n_chunks >= HDF5_CHUNKS_MAX) {
                h5_malformed(h, "root group's object header has more than %d continuation chunks", HDF5_CHUNKS_MAX);
                return -E2BIG;
        }
        h->chunks[h->n_chunks++] = (struct h5_chunk) { .addr = abs, .size = size };
        return 0;
}

static void continuation(struct h5 *h, struct cursor *m) {
        uint64_t addr, length, abs;
        struct cursor c;
        const uint8_t *sig;

        if (h5_addr(h, m, &addr) < 0 || h5_length(h, m, &length) < 0) {
                h5_malformed(h, "continuation message is cut short");
                return;
        }
        if (h5_region(h, addr, length, &c) < 0) {
                h5_malformed(h, "continuation chunk at address %llu (%llu bytes) lies outside the %zu-byte file",
                             (unsigned long long) addr, (unsigned long long) length, h->len);
                return;
        }
        abs = h->base + addr;
        if (h->oh_version == 1) {
                (void) chunk_add(h, abs, length);
                return;
        }
        /* "OCHK", the messages, a checksum. */
        if (length < 8 || cursor_take(&c, 4, &sig) < 0 || memcmp(sig, "OCHK", 4) != 0) {
                h5_malformed(h, "continuation chunk at address %llu has no OCHK signature", (unsigned long long) addr);
                return;
        }
        (void) chunk_add(h, abs + 4, length - 8);
}

static void message(struct h5 *h, uint16_t type, uint8_t flags, struct cursor *m) {
        if (++h->n_messages > HDF5_MESSAGES_MAX) {
                h5_malformed(h, "root group's object header has more than %d messages", HDF5_MESSAGES_MAX);
                return;
        }
        switch (type) {
        case MSG_CONTINUATION:
                continuation(h, m);
                break;
        case MSG_ATTRIBUTE:
                if (flags & MSG_FLAG_SHARED)
                        scan_finding(h->ctx, RULE_SCAN_ERROR, SEV_HIGH,
                                     "hdf5: the root group holds a shared attribute (in the shared message heap), which modelgate does not read; a model_config there would go unseen");
                else
                        attribute_message(h, m);
                break;
        case MSG_ATTRIBUTE_INFO: {
                uint8_t version, aflags;
                uint64_t heap;
                if (cursor_u8(m, &version) < 0 || cursor_u8(m, &aflags) < 0 ||
                    ((aflags & 0x01) && cursor_skip(m, 2) < 0) || h5_addr(h, m, &heap) < 0) {
                        h5_malformed(h, "attribute info message is cut short");
                        break;
                }
                if (heap != HDF5_UNDEF)
                        /* h5py writes this only with libver >= v108 and more than 8
                         * root attributes or one over 64 KiB; Keras never does. */
                        scan_finding(h->ctx, RULE_SCAN_ERROR, SEV_HIGH,
                                     "hdf5: root attributes in dense storage (fractal heap at address %llu) are not inspected; a model_config there would go unseen",
                                     (unsigned long long) heap);
                break;
        }
        default:
                break;
        }
}

/* The messages of one chunk. */
static void chunk_messages(struct h5 *h, const struct h5_chunk *ch) {
        struct cursor c = cursor_make(h->buf + ch->addr, (size_t) ch->size);
        size_t head = h->oh_version == 1 ? 8 : 4 + (h->oh_crt_order ? 2 : 0);

        while (!h->failed && cursor_left(&c) >= head) {
                uint64_t type = 0;
                uint16_t size = 0;
                uint8_t flags = 0;
                const uint8_t *data;
                struct cursor m;

                if (h->oh_version == 1) {
                        (void) h5_uint(&c, 2, &type);
                        (void) cursor_le16(&c, &size);
                        (void) cursor_u8(&c, &flags);
                        (void) cursor_skip(&c, 3);
                } else {
                        (void) h5_uint(&c, 1, &type);
                        (void) cursor_le16(&c, &size);
                        (void) cursor_u8(&c, &flags);
                        if (h->oh_crt_order)
                                (void) cursor_skip(&c, 2);
                }
                if (cursor_take(&c, size, &data) < 0) {
                        h5_malformed(h, "message of type %llu claims %u bytes, its chunk has %zu left",
                                     (unsigned long long) type, size, cursor_left(&c));
                        return;
                }
                if (h->oh_version == 1 && size % 8 != 0) {
                        h5_malformed(h, "version 1 object header message of %u bytes is not 8-byte aligned", size);
                        return;
                }
                m = cursor_make(data, size);
                message(h, (uint16_t) type, flags, &m);
        }
}

static void object_header_read(struct h5 *h, uint64_t addr) {
        struct cursor c;
        const uint8_t *sig;
        uint8_t version, flags;
        uint64_t size;

        if (h5_region(h, addr, 0, &c) < 0 || h5_region(h, addr, h->len - h->base - addr, &c) < 0) {
                h5_malformed(h, "root group's object header address %llu lies outside the %zu-byte file",
                             (unsigned long long) addr, h->len);
                return;
        }
        if (cursor_left(&c) >= 4 && memcmp(c.base, "OHDR", 4) == 0) {
                (void) cursor_take(&c, 4, &sig);
                if (cursor_u8(&c, &version) < 0 || cursor_u8(&c, &flags) < 0)
                        goto truncated;
                if (version != 2) {
                        h5_malformed(h, "object header (OHDR) version %u; only 2 exists", version);
                        return;
                }
                h->oh_version = 2;
                h->oh_crt_order = flags & 0x04;
                if (((flags & 0x20) && cursor_skip(&c, 16) < 0) || ((flags & 0x10) && cursor_skip(&c, 4) < 0) ||
                    h5_uint(&c, 1u << (flags & 0x03), &size) < 0)
                        goto truncated;
                if (size > cursor_left(&c)) {
                        h5_malformed(h, "root group's object header claims %llu bytes, %zu remain in the file",
                                     (unsigned long long) size, cursor_left(&c));
                        return;
                }
        } else {
                uint16_t nmesgs;
                uint32_t refs, hsize;
                if (cursor_u8(&c, &version) < 0)
                        goto truncated;
                if (version != 1) {
                        h5_malformed(h, "no object header at the root group's address %llu (version byte %u)",
                                     (unsigned long long) addr, version);
                        return;
                }
                h->oh_version = 1;
                /* reserved, message count, reference count, size, padding to 16 */
                if (cursor_skip(&c, 1) < 0 || cursor_le16(&c, &nmesgs) < 0 || cursor_le32(&c, &refs) < 0 ||
                    cursor_le32(&c, &hsize) < 0 || cursor_skip(&c, 4) < 0)
                        goto truncated;
                size = hsize;
                if (size > cursor_left(&c)) {
                        h5_malformed(h, "root group's object header claims %llu bytes, %zu remain in the file",
                                     (unsigned long long) size, cursor_left(&c));
                        return;
                }
        }
        (void) chunk_add(h, (uint64_t) (c.base + c.pos - h->buf), size);
        for (size_t i = 0; i < h->n_chunks && !h->failed; i++) {
                struct h5_chunk ch = h->chunks[i];
                chunk_messages(h, &ch);
        }
        return;

truncated:
        h5_malformed(h, "file ends inside the root group's object header");
}

enum mg_format hdf5_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        struct h5 *h;
        uint64_t root;
        enum mg_format fmt;

        h = calloc(1, sizeof(*h));
        if (!h) {
                scan_finding(ctx, RULE_SCAN_ERROR, SEV_HIGH, "hdf5: out of memory");
                return FMT_HDF5;
        }
        h->ctx = ctx;
        h->buf = buf;
        h->len = len;
        if (!hdf5_find_superblock(buf, len, &h->base))
                h5_malformed(h, "no superblock signature at offset 0 or a power of two from 512");
        else if (superblock_read(h, &root) == 0)
                object_header_read(h, root);
        fmt = h->model_config ? FMT_KERAS_H5 : FMT_HDF5;
        free(h);
        return fmt;
}
