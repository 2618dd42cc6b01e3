/* journal-queue.c — the logger thread: takes records off a fixed ring and writes
 * them with sd_journal_send. It resolves the opener's executable and uid from
 * /proc (readlink and stat only: neither opens a file, so neither raises a
 * fanotify event that this daemon would have to answer). A second thread sends
 * sd_notify() states, so that a journald that does not read (stopped, stuck)
 * holds up the records but never READY=1, STATUS= or WATCHDOG=1. */
#include <errno.h>
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
static pthread_t thread, notify_thread;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;          /* records queued, or stop */
static pthread_cond_t notify_cond = PTHREAD_COND_INITIALIZER;   /* states queued, or stop */

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
        pthread_cond_signal(&notify_cond);
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

static int write_record(const struct log_record *r) {
        char exe[PATH_MAX], uid[16];

        if (r->exe[0]) {
                snprintf(exe, sizeof(exe), "%s", r->exe);
                snprintf(uid, sizeof(uid), "%s", r->uid);
        } else
                process_identity(r->pid, exe, sizeof(exe), uid, sizeof(uid));
        if (r->pid > 0 || r->path[0])
                return sd_journal_send("MESSAGE=%s", r->message, "MESSAGE_ID=%s", message_ids[r->kind],
                                "PRIORITY=%d", r->priority, "SYSLOG_IDENTIFIER=modelgated",
                                "MODELGATE_VERDICT=%s", r->deny ? "deny" : "allow",
                                "MODELGATE_PATH=%s", r->path, "MODELGATE_RULE=%s", r->rule,
                                "MODELGATE_SEVERITY=%s", r->severity, "MODELGATE_SHA256=%s", r->sha256,
                                "MODELGATE_GLOBAL=%s", r->global, "MODELGATE_FORMAT=%s", r->format,
                                "MODELGATE_MODE=%s", r->mode, "MODELGATE_CACHED=%d", r->cached,
                                "MODELGATE_SOURCE=%s", r->source[0] ? r->source : "scan",
                                "MODELGATE_PID=%d", (int) r->pid, "MODELGATE_EXE=%s", exe,
                                "MODELGATE_UID=%s", uid, NULL);
        return sd_journal_send("MESSAGE=%s", r->message, "MESSAGE_ID=%s", message_ids[r->kind],
                                "PRIORITY=%d", r->priority, "SYSLOG_IDENTIFIER=modelgated", NULL);
}

/* sd_journal_send() reports success when journald's socket does not exist (it
 * fails silently then): that is asked first. No open, so no fanotify event. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* A record journald refused for what it is (too big, malformed) is dropped; any
 * other failure means journald is not there to take it (stopped, restarting,
 * its socket gone): the record is kept and tried again. */
static bool journal_absent(int r) {
        return r < 0 && r != -EINVAL && r != -EMSGSIZE && r != -E2BIG && r != -ENOMEM;
}

static void wait_ms_locked(unsigned ms) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (long) (ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
        }
        /* Pushes signal cond too: only the time, or a stop, ends the wait. */
        while (!stopping && pthread_cond_timedwait(&cond, &lock, &until) != ETIMEDOUT)
                ;
}

static void *logger(void *arg) {
        unsigned retry_ms = JOURNAL_RETRY_MIN_MS;
        (void) arg;
        pthread_mutex_lock(&lock);
        for (;;) {
                while (len == 0 && !stopping)
                        pthread_cond_wait(&cond, &lock);
                if (len == 0 && stopping)
                        break;
                struct log_record r = ring[head];
                unsigned long new_drops = dropped - dropped_reported;
                pthread_mutex_unlock(&lock);
                int ret = access(JOURNAL_SOCKET, F_OK) < 0 ? -ENOENT : write_record(&r);
                if (ret >= 0 && new_drops &&
                    sd_journal_send("MESSAGE=%lu journal records were dropped: the queue of %d was full or journald "
                                    "was away", new_drops, JOURNAL_QUEUE_MAX, "MESSAGE_ID=%s", MG_MSGID_QUEUE_DROPPED,
                                    "PRIORITY=%d", LOG_WARNING, "SYSLOG_IDENTIFIER=modelgated", NULL) < 0)
                        new_drops = 0;   /* told next time */
                pthread_mutex_lock(&lock);
                if (journal_absent(ret) && !stopping) {
                        /* The record stays at the head; the ring fills behind it and
                         * what does not fit is counted. */
                        wait_ms_locked(retry_ms);
                        retry_ms = retry_ms * 2 > JOURNAL_RETRY_MAX_MS ? JOURNAL_RETRY_MAX_MS : retry_ms * 2;
                        continue;
                }
                retry_ms = JOURNAL_RETRY_MIN_MS;
                head = (head + 1) % JOURNAL_QUEUE_MAX;
                len--;
                if (ret < 0)
                        dropped++;   /* refused, or journald away while stopping */
                dropped_reported += new_drops;
        }
        pthread_mutex_unlock(&lock);
        return NULL;
}

static void *notifier(void *arg) {
        (void) arg;
        pthread_mutex_lock(&lock);
        for (;;) {
                while (n_pending_notify == 0 && !stopping)
                        pthread_cond_wait(&notify_cond, &lock);
                if (n_pending_notify == 0 && stopping)
                        break;
                char states[8][512];
                unsigned n = n_pending_notify;
                memcpy(states, pending_notify, sizeof(states));
                n_pending_notify = 0;
                pthread_mutex_unlock(&lock);
                for (unsigned i = 0; i < n; i++)
                        sd_notify(0, states[i]);
                pthread_mutex_lock(&lock);
        }
        pthread_mutex_unlock(&lock);
        return NULL;
}

int journal_queue_start(void) {
        pthread_condattr_t a;
        int r;
        if ((r = pthread_condattr_init(&a)) != 0 || (r = pthread_condattr_setclock(&a, CLOCK_MONOTONIC)) != 0 ||
            (r = pthread_cond_destroy(&cond)) != 0 || (r = pthread_cond_init(&cond, &a)) != 0)
                return -r;
        pthread_condattr_destroy(&a);
        if ((r = pthread_create(&thread, NULL, logger, NULL)) != 0)
                return -r;
        if ((r = pthread_create(&notify_thread, NULL, notifier, NULL)) != 0)
                return -r;
        return 0;
}

/* Joins t, or gives up at the deadline: a thread stuck in a send to a journald
 * that does not read must not keep the daemon from exiting. */
static void join_until(pthread_t t, const struct timespec *until) {
        if (pthread_timedjoin_np(t, NULL, until) != 0)
                pthread_detach(t);
}

void journal_queue_stop(void) {
        struct timespec until;
        pthread_mutex_lock(&lock);
        stopping = true;
        pthread_cond_signal(&cond);
        pthread_cond_signal(&notify_cond);
        pthread_mutex_unlock(&lock);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += JOURNAL_STOP_GRACE_MS / 1000;
        join_until(notify_thread, &until);
        join_until(thread, &until);
}
