/* fuzz-policy.c — the policy file (modelgate-policy(5)) merged onto the built-in
 * default. A policy that loads must evaluate a report, and its canonical JSON must
 * load again to the same policy (same SHA-256), as policy.h promises. */
#include "fuzz.h"
#include "fuzz-tmpfile.h"
#include "policy.h"

static void evaluate_sample(const struct policy *p) {
        static const char *const names[][2] = {
                { "torch._utils", "_rebuild_tensor_v2" }, { "os", "system" }, { "builtins", "getattr.__call__" },
                { "torch", "os.system" }, { "collections", "OrderedDict" }, { "numpy.core.multiarray", "_reconstruct" },
        };
        report_init(&fuzz_report);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                report_add_global(&fuzz_report, (const uint8_t *) names[i][0], strlen(names[i][0]),
                                  (const uint8_t *) names[i][1], strlen(names[i][1]), VIA_STACK_GLOBAL, NULL);
        fuzz_report.has_license = true;
        snprintf(fuzz_report.license, sizeof(fuzz_report.license), "CC BY-NC 4.0");
        (void) policy_evaluate(p, &fuzz_report);
        fuzz_check_report(&fuzz_report);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct policy *p = NULL, *again = NULL;
        char err[POLICY_ERROR_MAX];
        const char *path = fuzz_tmp_write("policy.json", data, size);

        if (policy_load(path, &p, err, sizeof(err)) < 0) {
                if (!memchr(err, '\0', sizeof(err)))
                        abort();
                return 0;
        }
        evaluate_sample(p);
        for (size_t i = 0; i < policy_watch_count(p); i++)
                (void) strlen(policy_watch(p, i));
        for (size_t i = 0; i < policy_manifest_count(p); i++)
                (void) strlen(policy_manifest(p, i));

        const char *canon = policy_canonical_json(p);
        path = fuzz_tmp_write("policy.json", (const uint8_t *) canon, strlen(canon));
        if (policy_load(path, &again, err, sizeof(err)) < 0) {
                fprintf(stderr, "policy: canonical form does not load: %s\n%s\n", err, canon);
                abort();
        }
        if (strcmp(policy_sha256(p), policy_sha256(again)) != 0) {
                fprintf(stderr, "policy: canonical form loads to another policy:\n%s\n%s\n", canon,
                        policy_canonical_json(again));
                abort();
        }
        policy_free(again);
        policy_free(p);
        return 0;
}
