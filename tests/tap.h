/* tap.h — a minimal TAP producer for the unit tests: each case runs in its own
 * forked process, so a crash fails that case only and state never leaks between
 * cases. Exit 77 from a case (or tap_skip()) marks it skipped. */
#ifndef MODELGATE_TAP_H
#define MODELGATE_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct tap_case {
        const char *name;
        void (*fn)(void);
};

#define TAP_CHECK(cond) do {                                                     \
        if (!(cond)) {                                                            \
                fprintf(stderr, "# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                exit(1);                                                          \
        }                                                                         \
} while (0)

#define TAP_CHECK_STR(a, b) do {                                                 \
        const char *_a = (a), *_b = (b);                                          \
        if (!_a || !_b || strcmp(_a, _b) != 0) {                                  \
                fprintf(stderr, "# %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
                        _a ? _a : "(null)", _b ? _b : "(null)");                  \
                exit(1);                                                          \
        }                                                                         \
} while (0)

static inline int tap_run(const struct tap_case *cases, size_t n) {
        int failed = 0;
        printf("1..%zu\n", n);
        fflush(stdout);
        for (size_t i = 0; i < n; i++) {
                pid_t pid = fork();
                if (pid < 0) {
                        perror("fork");
                        return 99;
                }
                if (pid == 0) {
                        cases[i].fn();
                        fflush(NULL);
                        _exit(0);
                }
                int st = 0;
                while (waitpid(pid, &st, 0) < 0)
                        ;
                if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                        printf("ok %zu - %s\n", i + 1, cases[i].name);
                else if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
                        printf("ok %zu - %s # SKIP\n", i + 1, cases[i].name);
                else {
                        printf("not ok %zu - %s%s\n", i + 1, cases[i].name,
                               WIFSIGNALED(st) ? " (killed by a signal)" : "");
                        failed = 1;
                }
                fflush(stdout);
        }
        return failed;
}

#define TAP_MAIN(...)                                                            \
        int main(void) {                                                          \
                static const struct tap_case cases[] = { __VA_ARGS__ };           \
                return tap_run(cases, sizeof(cases) / sizeof(cases[0]));          \
        }

#define TAP_CASE(fn) { #fn, fn }

#endif
