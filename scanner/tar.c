/* tar.c — walks tar headers in a buffer as Python's tarfile.next() does: checksum,
 * GNU 'L'/'K' long names, pax 'x' records, ustar prefix, then the member's data
 * slice. It extracts nothing and follows no link; it only says where bytes are. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cursor.h"
#include "tar.h"

/* Extension headers ('L', 'K', 'x') that may precede one member. tar writers use
 * at most two; Python recurses once per header and gives up near 1000. */
#define TAR_EXT_HEADERS_MAX 16

/* Bytes of one long-name or pax header we parse: names are capped at TAR_NAME_MAX
 * anyway, and a pax header carrying more than this is not describing a model file. */
#define TAR_EXT_DATA_MAX ((size_t) 1 << 20)

/* Offsets of the fields in a header block. */
#define TAR_OFF_NAME     0
#define TAR_OFF_MODE     100
#define TAR_OFF_UID      108
#define TAR_OFF_GID      116
#define TAR_OFF_SIZE     124
#define TAR_OFF_MTIME    136
#define TAR_OFF_CHKSUM   148
#define TAR_OFF_TYPE     156
#define TAR_OFF_LINKNAME 157
#define TAR_OFF_MAGIC    257
#define TAR_OFF_DEVMAJOR 329
#define TAR_OFF_DEVMINOR 337
#define TAR_OFF_PREFIX   345
#define TAR_OFF_ISEXTENDED 482   /* old GNU sparse header */
#define TAR_SPARSE_EXT_ISEXTENDED 504

static size_t field_strlen(const uint8_t *f, size_t n) {
        const uint8_t *z = memchr(f, '\0', n);
        return z ? (size_t) (z - f) : n;
}

static bool is_space(uint8_t c) {
        /* What Python's str.strip() removes from an ASCII field. */
        return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* tarfile.nti(): base-256 when the first byte is 0x80 (0xff, negative, is refused
 * here), else octal text up to the first NUL, surrounded by whitespace; empty is 0. */
static int tar_number(const uint8_t *f, size_t n, uint64_t *ret) {
        uint64_t v = 0;
        size_t len, a = 0;

        if (f[0] == 0x80) {
                for (size_t i = 1; i < n; i++) {
                        if (v >> 56)
                                return -ERANGE;
                        v = v << 8 | f[i];
                }
                *ret = v;
                return 0;
        }
        if (f[0] == 0xff)
                return -ERANGE;
        len = field_strlen(f, n);
        while (a < len && is_space(f[a]))
                a++;
        while (len > a && is_space(f[len - 1]))
                len--;
        for (size_t i = a; i < len; i++) {
                if (f[i] < '0' || f[i] > '7' || v >> 61)
                        return -EINVAL;
                v = v << 3 | (uint64_t) (f[i] - '0');
        }
        *ret = v;
        return 0;
}

static bool block_is_zero(const uint8_t *b) {
        for (size_t i = 0; i < TAR_BLOCK_SIZE; i++)
                if (b[i])
                        return false;
        return true;
}

/* tarfile.calc_chksums(): the checksum field counts as spaces; some old tars
 * summed signed chars, so both sums are accepted. */
static bool checksum_ok(const uint8_t *b) {
        uint64_t want;
        int64_t usum = 256, ssum = 256;

        if (tar_number(b + TAR_OFF_CHKSUM, 8, &want) < 0)
                return false;
        for (size_t i = 0; i < TAR_BLOCK_SIZE; i++) {
                if (i >= TAR_OFF_CHKSUM && i < TAR_OFF_CHKSUM + 8)
                        continue;
                usum += b[i];
                ssum += (int8_t) b[i];
        }
        return (int64_t) want == usum || (int64_t) want == ssum;
}

bool tar_sniff(const uint8_t *buf, size_t len) {
        struct cursor c = cursor_make(buf, len);
        const uint8_t *b;

        if (cursor_take(&c, TAR_BLOCK_SIZE, &b) < 0 || block_is_zero(b))
                return false;
        if (memcmp(b + TAR_OFF_MAGIC, "ustar", 5) == 0)
                return true;
        return checksum_ok(b);
}

int tar_open(struct scan_ctx *ctx, const uint8_t *buf, size_t len, struct tar_reader *ret) {
        memset(ret, 0, sizeof(*ret));
        ret->ctx = ctx;
        ret->buf = buf;
        ret->len = len;
        return 0;
}

static size_t round_block(uint64_t n) {
        return (size_t) ((n + TAR_BLOCK_SIZE - 1) / TAR_BLOCK_SIZE * TAR_BLOCK_SIZE);
}

static int tar_fail(struct tar_reader *t, size_t at, const char *what) {
        scan_finding(t->ctx, RULE_MALFORMED, SEV_HIGH, "tar: %s (header at offset %zu)", what, at);
        t->done = true;
        return -EBADMSG;
}

/* Overrides that extension headers carry for the member after them. When several
 * headers set the same thing, the first one wins: tarfile applies them on the way
 * back out of its recursion. */
struct tar_pending {
        const uint8_t *name, *link;
        size_t name_len, link_len;
        bool has_name, has_link, has_size, sparse;
        uint64_t size;
};

static int parse_decimal(const uint8_t *s, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        if (n == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
                        return -EINVAL;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        *ret = v;
        return 0;
}

static bool key_is(const uint8_t *k, size_t n, const char *s) {
        return n == strlen(s) && memcmp(k, s, n) == 0;
}

/* Records "%d %s=%s\n" in a pax header. `global` ('g') records apply to every
 * later member in tarfile; path and size there are refused rather than followed. */
static int pax_parse(struct tar_reader *t, size_t at, const uint8_t *data, size_t n, bool global,
                     struct tar_pending *p) {
        struct cursor c = cursor_make(data, n);
        bool got_name = false, got_link = false, got_size = false;
        const uint8_t *name = NULL, *link = NULL;
        size_t name_len = 0, link_len = 0;
        uint64_t size = 0;

        while (cursor_left(&c) > 0) {
                struct cursor rec, lenc;
                const uint8_t *digits, *kv, *eq;
                size_t start = c.pos, nd = 0;
                uint64_t reclen;
                uint8_t ch;

                lenc = c;
                if (cursor_u8(&lenc, &ch) < 0 || ch == '\0')
                        break;  /* tarfile stops at a NUL */
                lenc = c;
                while (cursor_u8(&lenc, &ch) == 0 && ch >= '0' && ch <= '9')
                        nd++;
                if (nd == 0 || nd > 20 || ch != ' ' || cursor_take(&c, nd, &digits) < 0 ||
                    parse_decimal(digits, nd, &reclen) < 0 || reclen < 5 || reclen > n - start ||
                    cursor_slice(&c, start, (size_t) reclen, &rec) < 0)
                        return tar_fail(t, at, "invalid pax record");
                /* rec covers the whole record: "<digits> <key>=<value>\n". */
                size_t kvlen;
                if (cursor_skip(&rec, nd + 1) < 0 || cursor_left(&rec) < 2)
                        return tar_fail(t, at, "invalid pax record");
                kvlen = cursor_left(&rec) - 1;
                if (cursor_take(&rec, kvlen, &kv) < 0 || cursor_u8(&rec, &ch) < 0 || ch != '\n')
                        return tar_fail(t, at, "invalid pax record");
                eq = memchr(kv, '=', kvlen);
                if (!eq || eq == kv)
                        return tar_fail(t, at, "invalid pax record");
                size_t klen = (size_t) (eq - kv), vlen = kvlen - klen - 1;
                const uint8_t *v = eq + 1;

                if (key_is(kv, klen, "path")) {
                        got_name = true;
                        name = v;
                        name_len = vlen;
                        while (name_len > 0 && name[name_len - 1] == '/')
                                name_len--;   /* tarfile strips trailing slashes */
                } else if (key_is(kv, klen, "linkpath")) {
                        got_link = true;
                        link = v;
                        link_len = vlen;
                } else if (key_is(kv, klen, "size")) {
                        got_size = true;
                        if (parse_decimal(v, vlen, &size) < 0)
                                return tar_fail(t, at, "invalid pax size record");
                } else if (klen >= 11 && memcmp(kv, "GNU.sparse.", 11) == 0)
                        p->sparse = true;
                if (cursor_seek(&c, start + (size_t) reclen) < 0)
                        return tar_fail(t, at, "invalid pax record");
        }

        if (global) {
                if (got_name || got_size)
                        return tar_fail(t, at, "global pax header renames or resizes every later member");
                return 0;
        }
        if (got_name && !p->has_name) {
                p->has_name = true;
                p->name = name;
                p->name_len = name_len;
        }
        if (got_link && !p->has_link) {
                p->has_link = true;
                p->link = link;
                p->link_len = link_len;
        }
        if (got_size && !p->has_size) {
                p->has_size = true;
                p->size = size;
        }
        return 0;
}

static bool path_escapes(const uint8_t *s, size_t n) {
        size_t start = 0;

        if (n > 0 && s[0] == '/')
                return true;
        for (size_t i = 0; i <= n; i++) {
                if (i < n && s[i] != '/')
                        continue;
                if (i - start == 2 && s[start] == '.' && s[start + 1] == '.')
                        return true;
                start = i + 1;
        }
        return false;
}

static void member_finding(struct tar_reader *t, const struct tar_member *m, enum mg_rule rule,
                           const char *what) {
        char member[REPORT_MEMBER_MAX];
        size_t o = 0;

        if (t->ctx->member[0]) {
                o = strnlen(t->ctx->member, REPORT_MEMBER_MAX - 1);
                memcpy(member, t->ctx->member, o);
                if (o + 1 < REPORT_MEMBER_MAX)
                        member[o++] = '/';
        }
        report_escape(member + o, sizeof(member) - o, (const uint8_t *) m->name, m->name_len, NULL);
        report_add_finding(t->ctx->report, rule, SEV_HIGH, VIA_NONE, member, NULL, "tar: %s", what);
}

int tar_next(struct tar_reader *t, struct tar_member *ret) {
        struct cursor c = cursor_make(t->buf, t->len);
        struct tar_pending p = { 0 };
        struct tar_member m = { 0 };
        size_t first = t->pos;
        unsigned ext = 0;
        const uint8_t *b;
        uint64_t size;

        if (t->done)
                return 0;
        for (;;) {
                size_t at = t->pos;

                if (cursor_seek(&c, at) < 0 || cursor_left(&c) == 0) {
                        /* tarfile ends quietly at EOF between members, but not
                         * after an extension header that announced one. */
                        t->done = true;
                        return ext > 0 ? tar_fail(t, at, "archive ends after an extension header") : 0;
                }
                if (cursor_take(&c, TAR_BLOCK_SIZE, &b) < 0)
                        return tar_fail(t, at, "archive ends inside a header block");
                if (block_is_zero(b)) {
                        t->done = true;
                        return ext > 0 ? tar_fail(t, at, "end of archive after an extension header") : 0;
                }
                if (!checksum_ok(b))
                        return tar_fail(t, at, "bad header checksum");
                if (tar_number(b + TAR_OFF_SIZE, 12, &size) < 0)
                        return tar_fail(t, at, "invalid size field");
                {
                        static const size_t numeric[] = { TAR_OFF_MODE, TAR_OFF_UID, TAR_OFF_GID, TAR_OFF_MTIME,
                                                          TAR_OFF_DEVMAJOR, TAR_OFF_DEVMINOR };
                        static const size_t widths[] = { 8, 8, 8, 12, 8, 8 };
                        uint64_t ignored;
                        for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++)
                                if (tar_number(b + numeric[i], widths[i], &ignored) < 0)
                                        return tar_fail(t, at, "invalid numeric field");
                }
                char type = (char) b[TAR_OFF_TYPE];

                if (type == 'L' || type == 'K' || type == 'x' || type == 'X' || type == 'g') {
                        const uint8_t *data;
                        size_t padded = round_block(size);

                        if (++ext > TAR_EXT_HEADERS_MAX)
                                return tar_fail(t, at, "too many extension headers before one member");
                        if (size > cursor_left(&c) || padded > cursor_left(&c))
                                return tar_fail(t, at, "extension header data runs past the end");
                        if (size > TAR_EXT_DATA_MAX)
                                return tar_fail(t, at, "extension header data is too large");
                        /* tarfile reads the padded blocks and parses all of them. */
                        (void) cursor_take(&c, padded, &data);
                        t->pos = at + TAR_BLOCK_SIZE + padded;
                        if (type == 'L' || type == 'K') {
                                size_t n = field_strlen(data, padded);
                                if (type == 'L' && !p.has_name) {
                                        p.has_name = true;
                                        p.name = data;
                                        p.name_len = n;
                                } else if (type == 'K' && !p.has_link) {
                                        p.has_link = true;
                                        p.link = data;
                                        p.link_len = n;
                                }
                        } else {
                                int r = pax_parse(t, at, data, padded, type == 'g', &p);
                                if (r < 0)
                                        return r;
                                if (type == 'g')
                                        ext--;   /* not tied to the next member */
                        }
                        continue;
                }

                /* A member header. Name: extension headers, else prefix "/" name. */
                size_t nlen = 0;
                if (p.has_name) {
                        if (p.name_len > TAR_NAME_MAX)
                                return tar_fail(t, at, "member name longer than PATH_MAX");
                        memcpy(t->name, p.name, p.name_len);
                        nlen = p.name_len;
                } else {
                        size_t plen = field_strlen(b + TAR_OFF_PREFIX, 155);
                        size_t blen = field_strlen(b + TAR_OFF_NAME, 100);
                        if (plen > 0) {
                                memcpy(t->name, b + TAR_OFF_PREFIX, plen);
                                t->name[plen] = '/';
                                nlen = plen + 1;
                        }
                        memcpy(t->name + nlen, b + TAR_OFF_NAME, blen);
                        nlen += blen;
                }
                t->name[nlen] = '\0';

                if (type == '\0')
                        type = nlen > 0 && t->name[nlen - 1] == '/' ? '5' : '0';
                if (type == '5')
                        while (nlen > 0 && t->name[nlen - 1] == '/')
                                t->name[--nlen] = '\0';

                m.name = t->name;
                m.name_len = nlen;
                m.type = type;
                m.header_offset = first;
                if (p.has_link) {
                        m.link = p.link;
                        m.link_len = p.link_len;
                } else {
                        m.link = b + TAR_OFF_LINKNAME;
                        m.link_len = field_strlen(b + TAR_OFF_LINKNAME, 100);
                }
                if (p.has_size)
                        size = p.size;

                /* Old GNU sparse: more sparse maps follow in whole blocks. */
                if (type == 'S' && b[TAR_OFF_ISEXTENDED]) {
                        const uint8_t *xb;
                        do {
                                if (cursor_take(&c, TAR_BLOCK_SIZE, &xb) < 0)
                                        return tar_fail(t, at, "archive ends inside a sparse header");
                        } while (xb[TAR_SPARSE_EXT_ISEXTENDED]);
                }

                /* tarfile skips data only for regular and unknown types; for links,
                 * directories and devices the next header follows at once. */
                static const char other_types[] = { '1', '2', '3', '4', '5', '6' };
                m.is_file = memchr(other_types, type, sizeof(other_types)) == NULL;
                size_t data_at = c.pos;
                if (m.is_file) {
                        if (size > cursor_left(&c))
                                return tar_fail(t, at, "member data runs past the end of the archive");
                        (void) cursor_take(&c, (size_t) size, &m.data);
                        m.size = size;
                        if (size == 0)
                                m.data = NULL;
                        if (round_block(size) > t->len - data_at) {
                                /* tarfile fails reading the padding: this member is
                                 * whole, the archive ends. */
                                scan_finding(t->ctx, RULE_MALFORMED, SEV_HIGH,
                                             "tar: archive ends inside the padding of the member at offset %zu", at);
                                t->done = true;
                        } else
                                t->pos = data_at + round_block(size);
                } else
                        t->pos = data_at;

                if (path_escapes((const uint8_t *) m.name, m.name_len))
                        member_finding(t, &m, RULE_ARCHIVE_TAMPERED, "member name is absolute or has a '..' component");
                if ((type == '1' || type == '2') && path_escapes(m.link, m.link_len))
                        member_finding(t, &m, RULE_ARCHIVE_TAMPERED, "link target is absolute or has a '..' component");
                if (type == 'S' || p.sparse)
                        member_finding(t, &m, RULE_UNSUPPORTED_CONTAINER, "sparse member: its data is not stored in order");
                *ret = m;
                return 1;
        }
}
