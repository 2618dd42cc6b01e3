/* fuzz-scan.c — the whole scanner: scan_buffer() sniffs the input and dispatches to
 * every format parser (and into nested members, compressed streams, user blocks);
 * the report is then judged by the built-in policy, as the front end does. */
#include "fuzz.h"
#include "policy.h"

static struct policy *builtin;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char err[POLICY_ERROR_MAX];
        if (policy_load(NULL, &builtin, err, sizeof(err)) < 0) {
                fprintf(stderr, "fuzz: built-in policy: %s\n", err);
                abort();
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        report_init(&fuzz_report);
        scan_buffer(&fuzz_report, data, size);
        fuzz_check_report(&fuzz_report);
        (void) policy_evaluate(builtin, &fuzz_report);
        fuzz_check_report(&fuzz_report);
        return 0;
}
