/* scan-file.c — test helper: scans files in this process, without the worker or
 * its sandbox, and prints the same JSON document as `modelgate scan --format
 * json`. Lets the sanitizer build see the parsers directly. Not installed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output.h"
#include "policy.h"
#include "scan.h"

int main(int argc, char **argv) {
        const char *policy_path = NULL;
        struct policy *p;
        char err[POLICY_ERROR_MAX];
        struct output out;
        int i = 1, status = 0;

        if (argc > 2 && strcmp(argv[1], "--policy") == 0) {
                policy_path = argv[2];
                i = 3;
        }
        if (i >= argc) {
                fprintf(stderr, "usage: scan-file [--policy FILE] FILE...\n");
                return 2;
        }
        if (policy_load(policy_path, &p, err, sizeof(err)) < 0) {
                fprintf(stderr, "scan-file: %s\n", err);
                return 2;
        }
        struct scan_report *r = malloc(sizeof(*r));
        if (!r)
                return 2;
        output_begin(&out, stdout, OUTPUT_JSON, p);
        for (; i < argc; i++) {
                int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        fprintf(stderr, "scan-file: %s: %s\n", argv[i], strerror(errno));
                        status = 2;
                        continue;
                }
                report_init(r);
                int ret = scan_fd(fd, r);
                close(fd);
                if (ret < 0)
                        report_add_finding(r, RULE_SCAN_ERROR, SEV_HIGH, VIA_NONE, NULL, NULL, "cannot scan: %s",
                                           strerror(-ret));
                enum mg_verdict v = policy_evaluate(p, r);
                if (v == VERDICT_DENY && status == 0)
                        status = 1;
                output_file(&out, argv[i], r, v);
        }
        output_end(&out);
        free(r);
        policy_free(p);
        return status;
}
