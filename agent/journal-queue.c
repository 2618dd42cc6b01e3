/* journal-queue.c — the logger thread: takes records off a fixed ring and writes
 * them with sd_journal_send. It resolves the opener's executable and uid from
 * /proc (readlink and stat only: neither opens a file, so neither raises a
 * fanotify event that this daemon would have to answer). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "journal-ids.h"
#include "journal-queue.h"
#include "report.h"

static struct log_record ring[JOURNAL_QUEUE_MAX];
static unsigned head, len;
static unsigned long dropped, dropped_reported;
static bool stopping;
static pthread_t thread;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static const char *const message_ids[] = {
        [LOG_DENY] = MG_MSGID_DENY,
        [LOG_ALLOW] = MG_MSGID_ALLOW,
        [LOG_AUDIT_DENY] = MG_MSGID_AUDIT_DENY,
        [LOG_SCAN_FAILURE] = MG_MSGID_SCAN_FAILURE,
        [LOG_RELOAD] = MG_MSGID_RELOAD,
        [LOG_RELOAD_FAILED] = MG_MSGID_RELOAD_FAILED,
        [LOG_STARTED] = MG_MSGID_STARTED,
        [LOG_STOPPING] = MG_MSGID_STOPPING,
        [LOG_STATE] = MG_MSGID_STATE,
};

/* Notifications waiting for the logger, newest of each kind wins (STATUS=, WATCHDOG=1
 * and READY=1 are idempotent), so they never need a queue slot. */
static char pending_notify[8][512];
static unsigned n_pending_notify;

void journal_queue_notify(const char *state) {
        pthread_mutex_lock(&lock);
        unsigned i;
        for (i = 0; i < n_pending_notify; i++)
                if (strncmp(pending_notify[i], state, 6) == 0)
                        break;
        if (i == n_pending_notify && n_pending_notify < 8)
                n_pending_notify++;
        if (i < 8)
                snprintf(pending_notify[i], sizeof(pending_notify[i]), "%s", state);
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&lock);
}

void journal_queue_push(const struct log_record *r) {
        pthread_mutex_lock(&lock);
        if (len == JOURNAL_QUEUE_MAX)
                dropped++;
        else {
                ring[(head + len) % JOURNAL_QUEUE_MAX] = *r;
                len++;
                pthread_cond_signal(&cond);
        }
        pthread_mutex_unlock(&lock);
}

unsigned long journal_queue_dropped(void) {
        pthread_mutex_lock(&lock);
        unsigned long d = dropped;
        pthread_mutex_unlock(&lock);
        return d;
}

void process_identity(pid_t pid, char *exe, size_t exesz, char *uid, size_t uidsz) {
        char p[64], raw[PATH_MAX];
        struct stat st;
        ssize_t n;

        snprintf(exe, exesz, "?");
        snprintf(uid, uidsz, "?");
        if (pid <= 0)
                return;
        snprintf(p, sizeof(p), "/proc/%d/exe", (int) pid);
        n = readlink(p, raw, sizeof(raw));
        if (n > 0)
                report_escape(exe, exesz, (const uint8_t *) raw, (size_t) n, NULL);
        snprintf(p, sizeof(p), "/proc/%d", (int) pid);
        if (stat(p, &st) == 0)
                snprintf(uid, uidsz, "%u", (unsigned) st.st_uid);
}

static void write_record(const struct log_record *r) {
        char exe[PATH_MAX], uid[16];

        if (r->exe[0]) {
                snprintf(exe, sizeof(exe), "%s", r->exe);
                snprintf(uid, sizeof(uid), "%s", r->uid);
        } else
                process_identity(r->pid, exe, sizeof(exe), uid, sizeof(uid));
        if (r->pid > 0 || r->path[0])
                sd_journal_send("MESSAGE=%s", r->message, "MESSAGE_ID=%s", message_ids[r->kind],
                                "PRIORITY=%d", r->priority, "SYSLOG_IDENTIFIER=modelgated",
                                "MODELGATE_VERDICT=%s", r->deny ? "deny" : "allow",
                                "MODELGATE_PATH=%s", r->path, "MODELGATE_RULE=%s", r->rule,
                                "MODELGATE_SEVERITY=%s", r->severity, "MODELGATE_SHA256=%s", r->sha256,
                                "MODELGATE_GLOBAL=%s", r->global, "MODELGATE_FORMAT=%s", r->format,
                                "MODELGATE_MODE=%s", r->mode, "MODELGATE_CACHED=%d", r->cached,
                                "MODELGATE_SOURCE=%s", r->source[0] ? r->source : "scan",
                                "MODELGATE_PID=%d", (int) r->pid, "MODELGATE_EXE=%s", exe,
                                "MODELGATE_UID=%s", uid, NULL);
        else
                sd_journal_send("MESSAGE=%s", r->message, "MESSAGE_ID=%s", message_ids[r->kind],
                                "PRIORITY=%d", r->priority, "SYSLOG_IDENTIFIER=modelgated", NULL);
}

static void *logger(void *arg) {
        (void) arg;
        pthread_mutex_lock(&lock);
        for (;;) {
                while (len == 0 && n_pending_notify == 0 && !stopping)
                        pthread_cond_wait(&cond, &lock);
                if (n_pending_notify) {
                        char states[8][512];
                        unsigned n = n_pending_notify;
                        memcpy(states, pending_notify, sizeof(states));
                        n_pending_notify = 0;
                        pthread_mutex_unlock(&lock);
                        for (unsigned i = 0; i < n; i++)
                                sd_notify(0, states[i]);
                        pthread_mutex_lock(&lock);
                        continue;
                }
                if (len == 0 && stopping)
                        break;
                struct log_record r = ring[head];
                head = (head + 1) % JOURNAL_QUEUE_MAX;
                len--;
                unsigned long new_drops = dropped - dropped_reported;
                dropped_reported = dropped;
                pthread_mutex_unlock(&lock);
                write_record(&r);
                if (new_drops)
                        sd_journal_send("MESSAGE=%lu journal records were dropped: the queue of %d was full",
                                        new_drops, JOURNAL_QUEUE_MAX, "MESSAGE_ID=%s", MG_MSGID_QUEUE_DROPPED,
                                        "PRIORITY=%d", LOG_WARNING, "SYSLOG_IDENTIFIER=modelgated", NULL);
                pthread_mutex_lock(&lock);
        }
        pthread_mutex_unlock(&lock);
        return NULL;
}

int journal_queue_start(void) {
        int r = pthread_create(&thread, NULL, logger, NULL);
        return -r;
}

void journal_queue_stop(void) {
        pthread_mutex_lock(&lock);
        stopping = true;
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&lock);
        pthread_join(thread, NULL);
}
