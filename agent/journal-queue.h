/* journal-queue.h — records for journald, handed from the event thread to a
 * logger thread through a bounded queue. Queuing never blocks and never does I/O;
 * a full queue drops the record and counts it (the count is logged later). While
 * journald is away, records wait in the queue and are written when it is back. */
#ifndef MODELGATE_JOURNAL_QUEUE_H
#define MODELGATE_JOURNAL_QUEUE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Records waiting for the logger: a burst of this many denials is kept whole, and
 * so are the records of a journald restart. */
#define JOURNAL_QUEUE_MAX 4096
/* While journald does not take records, the one at the head is tried again after
 * this long, doubled each time up to the maximum. */
#define JOURNAL_RETRY_MIN_MS 100
#define JOURNAL_RETRY_MAX_MS 1000
/* On stop, what is queued gets this long to reach journald; then the daemon exits
 * anyway (every open was answered before). */
#define JOURNAL_STOP_GRACE_MS 2000

enum log_kind {
        LOG_DENY,
        LOG_ALLOW,
        LOG_AUDIT_DENY,
        LOG_SCAN_FAILURE,
        LOG_RELOAD,
        LOG_RELOAD_FAILED,
        LOG_STARTED,
        LOG_STOPPING,
        LOG_STATE,              /* the verdict store or an attestation: loaded, or skipped and why */
        LOG_NOTIFY,             /* not a journal record: message is an sd_notify() state */
};

struct log_record {
        enum log_kind kind;
        int priority;                   /* syslog LOG_* */
        pid_t pid;                      /* the opener, 0 when not about an open */
        bool cached;
        bool deny;                      /* the answer the opener got */
        char path[PATH_MAX];            /* escaped */
        char exe[256];                  /* the opener's executable, "" when unknown */
        char uid[16];
        char rule[32];
        char severity[16];
        char global[96];
        char sha256[65];
        char format[24];
        char mode[8];                   /* enforce|audit */
        char source[16];                /* scan|cache|store|attestation|error: where the verdict came from */
        char message[512];
};

int journal_queue_start(void);          /* starts the logger thread; 0 or -errno */
void journal_queue_push(const struct log_record *r);   /* never blocks */

/* sd_notify(state) from the logger thread: a send to the service manager's socket
 * can block, and the event thread must never wait on a process that may itself be
 * waiting for an answer from it. Never dropped by a full queue. */
void journal_queue_notify(const char *state);

/* The executable (escaped) and uid of a process, from /proc: readlink and stat,
 * no open. Cheap enough for the event thread on the paths that log. */
void process_identity(pid_t pid, char *exe, size_t exesz, char *uid, size_t uidsz);
void journal_queue_stop(void);          /* flushes what is queued, joins the threads (bounded) */
unsigned long journal_queue_dropped(void);

#endif
