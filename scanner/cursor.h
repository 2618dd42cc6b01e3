/* cursor.h — the one place where reads from untrusted buffers are bounds-checked.
 * Every parser in scanner/ walks its input through a struct cursor; none indexes a
 * buffer with a length it read from that buffer. */
#ifndef MODELGATE_CURSOR_H
#define MODELGATE_CURSOR_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cursor {
        const uint8_t *base;
        size_t len;
        size_t pos;
};

static inline struct cursor cursor_make(const void *base, size_t len) {
        return (struct cursor) { .base = base, .len = len, .pos = 0 };
}

static inline size_t cursor_left(const struct cursor *c) {
        return c->len - c->pos;
}

/* Takes n bytes; returns -ENODATA (cursor untouched) when fewer remain. */
static inline int cursor_take(struct cursor *c, size_t n, const uint8_t **ret) {
        if (n > cursor_left(c))
                return -ENODATA;
        if (ret)
                *ret = c->base + c->pos;
        c->pos += n;
        return 0;
}

static inline int cursor_skip(struct cursor *c, size_t n) {
        return cursor_take(c, n, NULL);
}

static inline int cursor_seek(struct cursor *c, size_t pos) {
        if (pos > c->len)
                return -ENODATA;
        c->pos = pos;
        return 0;
}

static inline int cursor_u8(struct cursor *c, uint8_t *ret) {
        const uint8_t *p;
        int r = cursor_take(c, 1, &p);
        if (r < 0)
                return r;
        *ret = p[0];
        return 0;
}

static inline int cursor_le16(struct cursor *c, uint16_t *ret) {
        const uint8_t *p;
        int r = cursor_take(c, 2, &p);
        if (r < 0)
                return r;
        *ret = (uint16_t) (p[0] | (uint16_t) p[1] << 8);
        return 0;
}

static inline int cursor_le32(struct cursor *c, uint32_t *ret) {
        const uint8_t *p;
        int r = cursor_take(c, 4, &p);
        if (r < 0)
                return r;
        *ret = (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
        return 0;
}

static inline int cursor_le64(struct cursor *c, uint64_t *ret) {
        uint32_t lo, hi;
        struct cursor save = *c;
        if (cursor_le32(c, &lo) < 0 || cursor_le32(c, &hi) < 0) {
                *c = save;
                return -ENODATA;
        }
        *ret = (uint64_t) hi << 32 | lo;
        return 0;
}

/* A line ending in '\n': *ret points at its first byte, *ret_len excludes the '\n'.
 * -ENODATA when no newline remains (cursor untouched). */
static inline int cursor_line(struct cursor *c, const uint8_t **ret, size_t *ret_len) {
        const uint8_t *start = c->base + c->pos;
        const uint8_t *nl = memchr(start, '\n', cursor_left(c));
        if (!nl)
                return -ENODATA;
        *ret = start;
        *ret_len = (size_t) (nl - start);
        c->pos += *ret_len + 1;
        return 0;
}

/* Sub-cursor over [pos, pos+n) of c, without moving c. */
static inline int cursor_slice(const struct cursor *c, size_t pos, size_t n, struct cursor *ret) {
        if (pos > c->len || n > c->len - pos)
                return -ENODATA;
        *ret = cursor_make(c->base + pos, n);
        return 0;
}

#endif
