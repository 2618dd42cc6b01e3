/* fuzz-patterns.c — global patterns (allow/deny, the dotted attribute walk) and
 * license globs, with names as a pickle or a file's metadata may carry them.
 * Input: pattern NUL module NUL qualname (missing parts are empty). */
#include "fuzz.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char buf[3 * 512];
        const char *part[3] = { "", "", "" };

        if (size >= sizeof(buf))
                return 0;
        memcpy(buf, data, size);
        buf[size] = '\0';
        char *p = buf;
        for (int i = 0; i < 3 && p <= buf + size; i++) {
                part[i] = p;
                p += strlen(p) + 1;
        }
        (void) policy_match_global(part[0], part[1], part[2]);
        (void) policy_match_deny(part[0], part[1], part[2]);
        (void) policy_match_license(part[0], part[1]);
        return 0;
}
