/* lfs.c — recognises Git LFS pointer files and reports them. Owns only the pointer
 * grammar of git-lfs's docs/spec.md as lfs/pointer.go reads it; it never fetches,
 * follows or trusts the oid, and it says nothing about the object it names. */
#include <string.h>

#include "cursor.h"
#include "lfs.h"
#include "text-codec.h"

/* The version URLs git-lfs accepts (v1Aliases in lfs/pointer.go). */
static const char *const lfs_versions[] = {
        "https://git-lfs.github.com/spec/v1",   /* public release */
        "https://hawser.github.com/spec/v1",    /* pre-release */
        "http://git-media.io/v/2",              /* alpha */
};

#define LFS_OID_HEX 64   /* a SHA-256 in hex: the only oid type of spec v1 */

static bool is_space(uint8_t c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* bytes.TrimSpace(): the pointer with surrounding whitespace removed. */
static struct cursor lfs_trimmed(const uint8_t *buf, size_t len) {
        size_t a = 0, b = len;

        while (a < b && is_space(buf[a]))
                a++;
        while (b > a && is_space(buf[b - 1]))
                b--;
        return cursor_make(buf + a, b - a);
}

/* The next non-blank line, without its "\n" or "\r\n". The last line may lack the
 * newline (trimming removed it). Returns false at the end. */
static bool lfs_next_line(struct cursor *c, const uint8_t **ret, size_t *ret_len) {
        while (cursor_left(c) > 0) {
                const uint8_t *line;
                size_t n;

                if (cursor_line(c, &line, &n) < 0) {
                        n = cursor_left(c);
                        (void) cursor_take(c, n, &line);
                }
                if (n > 0 && line[n - 1] == '\r')
                        n--;
                if (n == 0)
                        continue;
                *ret = line;
                *ret_len = n;
                return true;
        }
        return false;
}

static bool bytes_eq(const uint8_t *a, size_t alen, const char *s) {
        return alen == strlen(s) && memcmp(a, s, alen) == 0;
}

/* "key value": splits at the first space. */
static bool lfs_split(const uint8_t *line, size_t n, const uint8_t **key, size_t *key_len,
                      const uint8_t **value, size_t *value_len) {
        const uint8_t *sp = memchr(line, ' ', n);

        if (!sp)
                return false;
        *key = line;
        *key_len = (size_t) (sp - line);
        *value = sp + 1;
        *value_len = n - *key_len - 1;
        return true;
}

/* extRE of lfs/pointer.go: "ext-", one digit, "-", one or more word characters. */
static bool lfs_is_ext_key(const uint8_t *k, size_t n) {
        if (n < 7 || memcmp(k, "ext-", 4) != 0 || k[4] < '0' || k[4] > '9' || k[5] != '-')
                return false;
        for (size_t i = 6; i < n; i++)
                if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
                      (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
                        return false;
        return true;
}

static bool lfs_version_known(const uint8_t *v, size_t n) {
        for (size_t i = 0; i < sizeof(lfs_versions) / sizeof(lfs_versions[0]); i++)
                if (bytes_eq(v, n, lfs_versions[i]))
                        return true;
        return false;
}

static bool lfs_parse(const uint8_t *buf, size_t len, char oid[65], uint64_t *size, const char **why) {
        struct cursor c;
        const uint8_t *line, *key, *val;
        size_t n, klen, vlen;
        char hex[LFS_OID_HEX + 1];
        uint64_t sz = 0;

        if (len >= LFS_POINTER_MAX) {
                *why = "1024 bytes or longer";
                return false;
        }
        c = lfs_trimmed(buf, len);
        if (!lfs_next_line(&c, &line, &n) || !lfs_split(line, n, &key, &klen, &val, &vlen) ||
            !bytes_eq(key, klen, "version")) {
                *why = "no version line";
                return false;
        }
        if (!lfs_version_known(val, vlen)) {
                *why = "unknown spec version";
                return false;
        }
        /* Extension lines, then oid. */
        for (;;) {
                if (!lfs_next_line(&c, &line, &n)) {
                        *why = "no oid line";
                        return false;
                }
                if (!lfs_split(line, n, &key, &klen, &val, &vlen)) {
                        *why = "a line without a value";
                        return false;
                }
                if (!lfs_is_ext_key(key, klen))
                        break;
        }
        if (!bytes_eq(key, klen, "oid")) {
                *why = "oid is not the key after version";
                return false;
        }
        if (vlen != 7 + LFS_OID_HEX || memcmp(val, "sha256:", 7) != 0) {
                *why = "oid is not sha256:<64 hex digits>";
                return false;
        }
        for (size_t i = 0; i < LFS_OID_HEX; i++) {
                int d = hex_digit_value(val[7 + i]);
                if (d < 0) {
                        *why = "oid is not sha256:<64 hex digits>";
                        return false;
                }
                hex[i] = "0123456789abcdef"[d];
        }
        hex[LFS_OID_HEX] = '\0';
        if (!lfs_next_line(&c, &line, &n) || !lfs_split(line, n, &key, &klen, &val, &vlen) ||
            !bytes_eq(key, klen, "size")) {
                *why = "no size line after oid";
                return false;
        }
        /* strconv.ParseInt(value, 10, 64), non-negative. */
        if (vlen == 0) {
                *why = "size is not a non-negative integer";
                return false;
        }
        for (size_t i = 0; i < vlen; i++) {
                if (val[i] < '0' || val[i] > '9' || sz > ((uint64_t) INT64_MAX - (uint64_t) (val[i] - '0')) / 10) {
                        *why = "size is not a non-negative integer";
                        return false;
                }
                sz = sz * 10 + (uint64_t) (val[i] - '0');
        }
        if (lfs_next_line(&c, &line, &n)) {
                *why = "extra lines after size";
                return false;
        }
        memcpy(oid, hex, sizeof(hex));
        *size = sz;
        return true;
}

bool lfs_pointer_parse(const uint8_t *buf, size_t len, char oid[65], uint64_t *size) {
        const char *why;

        return lfs_parse(buf, len, oid, size, &why);
}

bool lfs_sniff(const uint8_t *buf, size_t len) {
        struct cursor c;
        const uint8_t *line, *key, *val;
        size_t n, klen, vlen;

        if (len >= LFS_POINTER_MAX)
                return false;
        c = lfs_trimmed(buf, len);
        return lfs_next_line(&c, &line, &n) && lfs_split(line, n, &key, &klen, &val, &vlen) &&
               bytes_eq(key, klen, "version") && lfs_version_known(val, vlen);
}

void lfs_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        char oid[65];
        uint64_t size;
        const char *why = "";

        if (lfs_parse(buf, len, oid, &size, &why))
                scan_finding(ctx, RULE_LFS_POINTER, SEV_CRITICAL,
                             "Git LFS pointer instead of the file: oid sha256:%s size %llu — "
                             "the download did not fetch the real content", oid, (unsigned long long) size);
        else
                scan_finding(ctx, RULE_LFS_POINTER, SEV_CRITICAL,
                             "damaged Git LFS pointer instead of the file (%s) — "
                             "the download did not fetch the real content", why);
}
