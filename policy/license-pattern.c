/* license-pattern.c — normal form of license identifiers and case-insensitive
 * glob matching for restricted_licenses. Works on short strings in caller-owned
 * buffers; it does not decide what is restricted (the policy lists do). */
#include <errno.h>
#include <string.h>

#include "license-pattern.h"
#include "policy.h"

int license_normalize(const char *s, char *buf, size_t bufsz) {
        size_t o = 0;
        bool dash = false;

        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;

                if (c == 0x7f || (c < ' ' && c != '\t'))
                        return -EINVAL;
                if (c == ' ' || c == '\t' || c == '_' || c == '-') {
                        dash = o > 0;   /* leading separators vanish */
                        continue;
                }
                if (o + (dash ? 2 : 1) >= bufsz)
                        return -ENAMETOOLONG;
                if (dash) {
                        buf[o++] = '-';
                        dash = false;
                }
                buf[o++] = (char) (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        if (bufsz == 0)
                return -ENAMETOOLONG;
        buf[o] = '\0';
        return o == 0 ? -EINVAL : (int) o;
}

bool license_glob_match(const char *pattern, const char *s) {
        const char *star = NULL, *resume = NULL;

        /* Greedy with one backtrack point: the last '*' seen absorbs one more byte
         * each time the rest fails. Linear enough for strings of this size. */
        while (*s) {
                if (*pattern == '*') {
                        star = pattern++;
                        resume = s;
                } else if (*pattern == '?' || *pattern == *s) {
                        pattern++;
                        s++;
                } else if (star) {
                        pattern = star + 1;
                        s = ++resume;
                } else
                        return false;
        }
        while (*pattern == '*')
                pattern++;
        return *pattern == '\0';
}

bool policy_match_license(const char *pattern, const char *license) {
        char p[LICENSE_PATTERN_MAX], l[LICENSE_PATTERN_MAX];

        if (!pattern || !license)
                return false;
        if (license_normalize(pattern, p, sizeof(p)) < 0 ||
            license_normalize(license, l, sizeof(l)) < 0)
                return false;
        return license_glob_match(p, l);
}
