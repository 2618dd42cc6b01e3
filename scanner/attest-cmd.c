/* attest-cmd.c — the CLI's side of attestations: collecting each scanned file's
 * hash and verdict for `modelgate scan --attest`, and `modelgate attest verify`,
 * which checks an envelope offline. Signing and verifying live in
 * policy/attestation.c; this file only feeds them and prints. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest-cmd.h"
#include "report.h"

/* The rules of r's findings, worst first, each once. */
int attest_cmd_collect(struct attest_writer *w, const char *path, const struct scan_report *r, enum mg_verdict v) {
        const char *rules[REPORT_FINDINGS_MAX];
        size_t n = 0;

        if (!r->has_sha256) {
                char esc[4096];
                report_escape(esc, sizeof(esc), (const uint8_t *) path, strlen(path), NULL);
                fprintf(stderr, "modelgate: %s: not hashed, left out of the attestation\n", esc);
                return -EIO;
        }
        for (int sev = SEV_CRITICAL; sev >= SEV_INFO; sev--)
                for (uint32_t i = 0; i < r->n_findings && i < REPORT_FINDINGS_MAX; i++) {
                        const char *name = rule_name((enum mg_rule) r->findings[i].rule);
                        bool seen = false;
                        if (r->findings[i].severity != sev || !name)
                                continue;
                        for (size_t k = 0; k < n && !seen; k++)
                                seen = strcmp(rules[k], name) == 0;
                        if (!seen)
                                rules[n++] = name;
                }
        return attest_writer_add(w, r->sha256, r->size, v == VERDICT_DENY, rules, n);
}

struct verify_print {
        unsigned long files, denied;
};

static int print_fact(void *ud, const struct attest_fact *f) {
        struct verify_print *p = ud;
        char hex[65];
        static const char d[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++) {
                hex[2 * i] = d[f->sha256[i] >> 4];
                hex[2 * i + 1] = d[f->sha256[i] & 15];
        }
        hex[64] = '\0';
        printf("%s %llu %s%s%s\n", hex, (unsigned long long) f->size, f->deny ? "deny" : "allow",
               f->rule >= 0 ? " " : "", f->rule >= 0 ? rule_name((enum mg_rule) f->rule) : "");
        p->files++;
        p->denied += f->deny;
        return 0;
}

/* modelgate attest verify --key PUB.pem [--key ...] [--policy FILE] ENVELOPE
 * Exit 0 when a listed key signed it (and it was made under the policy given,
 * if one is), 1 when not, 2 on a usage error or unreadable input. */
int attest_cmd_main(int argc, char **argv) {
        static const struct option opts[] = {
                { "key", required_argument, NULL, 'k' },
                { "policy", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct attest_keyring *k = NULL;
        struct policy *policy = NULL;
        char err[ATTEST_ERROR_MAX > POLICY_ERROR_MAX ? ATTEST_ERROR_MAX : POLICY_ERROR_MAX], stmt_policy[65];
        const char *policy_path = NULL;
        struct verify_print pr = { 0 };
        int c, r, ret = 2;

        if (argc < 2 || strcmp(argv[1], "verify") != 0) {
                fputs("usage: modelgate attest verify --key PUBLIC.pem [--key ...] [--policy FILE] ENVELOPE\n", stderr);
                return 2;
        }
        argc--;
        argv++;
        if (attest_keyring_new(&k) < 0)
                return 2;
        while ((c = getopt_long(argc, argv, "k:p:h", opts, NULL)) != -1) {
                switch (c) {
                case 'k':
                        if (attest_keyring_add(k, optarg, err, sizeof(err)) < 0) {
                                fprintf(stderr, "modelgate attest: key %s\n", err);
                                goto out;
                        }
                        break;
                case 'p':
                        policy_path = optarg;
                        break;
                case 'h':
                        puts("usage: modelgate attest verify --key PUBLIC.pem [--key ...] [--policy FILE] ENVELOPE");
                        ret = 0;
                        goto out;
                default:
                        goto out;
                }
        }
        if (optind + 1 != argc || attest_keyring_count(k) == 0) {
                fputs("usage: modelgate attest verify --key PUBLIC.pem [--key ...] [--policy FILE] ENVELOPE\n", stderr);
                goto out;
        }
        if (policy_path && policy_load(policy_path, &policy, err, sizeof(err)) < 0) {
                fprintf(stderr, "modelgate attest: invalid policy: %s\n", err);
                goto out;
        }
        FILE *f = fopen(argv[optind], "re");
        char *text = NULL;
        size_t len = 0;
        if (f) {
                text = malloc(ATTEST_FILE_MAX + 1);
                len = text ? fread(text, 1, ATTEST_FILE_MAX + 1, f) : 0;
                fclose(f);
        }
        if (!f || !text || len > ATTEST_FILE_MAX) {
                fprintf(stderr, "modelgate attest: %s: %s\n", argv[optind], !f ? strerror(errno) : "too big");
                free(text);
                goto out;
        }
        r = attest_verify(k, text, len, stmt_policy, print_fact, &pr, err, sizeof(err));
        free(text);
        if (r < 0) {
                fprintf(stderr, "modelgate attest: %s: NOT trusted: %s\n", argv[optind], err);
                ret = 1;
                goto out;
        }
        if (policy && strcmp(stmt_policy, policy_sha256(policy)) != 0) {
                fprintf(stderr, "modelgate attest: %s: signed, but under policy sha256 %s, not %s's %s\n", argv[optind],
                        stmt_policy, policy_source(policy), policy_sha256(policy));
                ret = 1;
                goto out;
        }
        fprintf(stderr, "modelgate attest: %s: good signature; policy sha256 %s; %lu files, %lu denied\n",
                argv[optind], stmt_policy, pr.files, pr.denied);
        ret = 0;
out:
        attest_keyring_free(k);
        policy_free(policy);
        return ret;
}
