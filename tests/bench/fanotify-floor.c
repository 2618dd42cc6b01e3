/* fanotify-floor.c — the least a daemon that sees every open can cost: one
 * FAN_OPEN_PERM group answering FAN_ALLOW to every event from a blocking read()
 * loop. A benchmark baseline only: it decides nothing, logs nothing, opens nothing.
 * With -2 the answers are written by a second thread, to which the reading thread
 * hands each event's fd through a pipe: the shape of fapolicyd (a reader and a
 * decision thread), to tell what that shape is worth apart from any decision. */
#ifndef _GNU_SOURCE            /* config.h defines it in the automake build */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/fanotify.h>
#include <unistd.h>

/* One read() returns up to 4096 / 24 = 170 events: enough to drain a burst from
 * a few hundred openers without a second system call. */
#define EVENT_BUF_SIZE 4096

/* Closing the group (our exit) allows every open still waiting for us. */
static void on_term(int sig) {
        (void) sig;
        _exit(0);
}

/* Only main reports: each failure is one line on stderr and exit status 1. */
static int fail(const char *what) {
        perror(what);
        return 1;
}

static int fan = -1;
static int handoff[2] = { -1, -1 };     /* -2: event fds, reader -> answering thread */

static int allow(int fd) {
        struct fanotify_response r = { .fd = fd, .response = FAN_ALLOW };
        if (write(fan, &r, sizeof r) != (ssize_t) sizeof r)
                return -1;
        close(fd);
        return 0;
}

static void *answering_thread(void *arg) {
        int fd;
        (void) arg;
        for (;;) {
                ssize_t n = read(handoff[0], &fd, sizeof fd);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n != (ssize_t) sizeof fd || allow(fd) < 0) {
                        perror("answering thread");
                        _exit(1);
                }
        }
        return NULL;
}

int main(int argc, char **argv) {
        /* modelgated places a filesystem mark: a mount mark misses opens made
         * through other mounts of the same filesystem (bind mounts, namespaces). */
        unsigned int mark_kind = FAN_MARK_FILESYSTEM;
        int opt;

        bool two_threads = false;
        while ((opt = getopt(argc, argv, "m2")) != -1) {
                if (opt == 'm')
                        mark_kind = FAN_MARK_MOUNT;
                else if (opt == '2')
                        two_threads = true;
                else
                        goto usage;
        }
        if (optind != argc - 1)
                goto usage;

        struct sigaction sa = { .sa_handler = on_term };
        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
                return fail("sigaction");

        fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE,
                                O_RDONLY | O_LARGEFILE | O_CLOEXEC);
        if (fan < 0)
                return fail("fanotify_init");
        if (fanotify_mark(fan, FAN_MARK_ADD | mark_kind, FAN_OPEN_PERM, AT_FDCWD, argv[optind]) < 0)
                return fail(argv[optind]);
        pthread_t answerer;
        if (two_threads && (pipe2(handoff, O_CLOEXEC) < 0 || pthread_create(&answerer, NULL, answering_thread, NULL) != 0))
                return fail("answering thread");
        if (printf("ready\n") < 0 || fflush(stdout) != 0)
                return fail("stdout");

        union {
                struct fanotify_event_metadata align;
                char bytes[EVENT_BUF_SIZE];
        } buf;
        for (;;) {
                ssize_t len = read(fan, buf.bytes, sizeof buf.bytes);
                if (len < 0) {
                        if (errno == EINTR)
                                continue;
                        return fail("read");
                }
                for (struct fanotify_event_metadata *ev = &buf.align; FAN_EVENT_OK(ev, len);
                     ev = FAN_EVENT_NEXT(ev, len)) {
                        if (ev->vers != FANOTIFY_METADATA_VERSION) {
                                fprintf(stderr, "fanotify: metadata version %u\n", ev->vers);
                                return 1;
                        }
                        if (ev->fd < 0)         /* FAN_NOFD: an overflow, impossible unbounded */
                                continue;
                        if (two_threads) {
                                if (write(handoff[1], &ev->fd, sizeof ev->fd) != (ssize_t) sizeof ev->fd)
                                        return fail("handing over an event");
                        } else if (allow(ev->fd) < 0)
                                return fail("fanotify response");
                }
        }

usage:
        fprintf(stderr, "usage: %s [-m] [-2] DIR\n"
                "  FAN_OPEN_PERM on DIR's filesystem (-m: on its mount), every open allowed\n"
                "  (-2: answered by a second thread, the reading thread only reads)\n", argv[0]);
        return 2;
}
