/* fuzz-worker-proto.c — the front end's receiver of worker messages: a compromised
 * worker may send anything. The input is a sequence of records; each starts with a
 * control byte:
 *   bit 7 set:   a raw message of (control & 0x7f) * 8 bytes, the rest of the
 *                record, exactly as read from the socket (wrong sizes included);
 *   bit 7 clear: a well-framed message (right magic and job) of type control & 7
 *                (enum wp_type; 2..4 are valid here) whose body is the next
 *                sizeof(union) bytes.
 * An accepted report is then judged by the built-in policy, as the front end does. */
#include "fuzz.h"
#include "policy.h"

#define FUZZ_JOB 42

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
        static struct scan_report r;
        struct wp_receiver rx;
        const size_t body = sizeof(((struct wp_msg *) 0)->u);
        size_t pos = 0;
        int ret = 0;

        wp_receiver_start(&rx, FUZZ_JOB, &r);
        while (pos < size && ret == 0) {
                uint8_t control = data[pos++];
                struct wp_msg m;

                if (control & 0x80) {
                        uint8_t raw[sizeof(struct wp_msg) + 8];
                        size_t n = (size_t) (control & 0x7f) * 8;
                        if (n > sizeof(raw))
                                n = sizeof(raw);
                        if (n > size - pos)
                                n = size - pos;
                        memcpy(raw, data + pos, n);
                        pos += n;
                        ret = wp_receiver_feed(&rx, raw, n);
                        continue;
                }
                memset(&m, 0, sizeof(m));
                m.magic = WORKER_MAGIC;
                m.type = control & 7;
                m.job = FUZZ_JOB;
                size_t n = body < size - pos ? body : size - pos;
                memcpy(&m.u, data + pos, n);
                pos += n;
                ret = wp_receiver_feed(&rx, &m, sizeof(m));
        }
        if (ret == 1) {
                /* What was accepted must be what the receiver promises. */
                if (!rx.done || r.n_globals > REPORT_GLOBALS_MAX || r.n_findings > REPORT_FINDINGS_MAX)
                        abort();
                fuzz_check_report(&r);
                (void) report_worst_severity(&r);
                (void) policy_evaluate(builtin, &r);
                fuzz_check_report(&r);
                /* Once done, nothing more is accepted. */
                if (pos < size && wp_receiver_feed(&rx, data + pos, size - pos) != -EBADMSG)
                        abort();
        }
        return 0;
}
