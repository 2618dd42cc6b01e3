/* fanotify-floor.c — the least a daemon that sees every open can cost: one
 * FAN_OPEN_PERM group answering FAN_ALLOW to every event from a blocking read()
 * loop. A benchmark baseline only: it decides nothing, logs nothing, opens nothing. */
#ifndef _GNU_SOURCE            /* config.h defines it in the automake build */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

int main(int argc, char **argv) {
        /* modelgated places a filesystem mark: a mount mark misses opens made
         * through other mounts of the same filesystem (bind mounts, namespaces). */
        unsigned int mark_kind = FAN_MARK_FILESYSTEM;
        int opt;

        while ((opt = getopt(argc, argv, "m")) != -1) {
                if (opt != 'm')
                        goto usage;
                mark_kind = FAN_MARK_MOUNT;
        }
        if (optind != argc - 1)
                goto usage;

        struct sigaction sa = { .sa_handler = on_term };
        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
                return fail("sigaction");

        int fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE,
                                O_RDONLY | O_LARGEFILE | O_CLOEXEC);
        if (fan < 0)
                return fail("fanotify_init");
        if (fanotify_mark(fan, FAN_MARK_ADD | mark_kind, FAN_OPEN_PERM, AT_FDCWD, argv[optind]) < 0)
                return fail(argv[optind]);
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
                        struct fanotify_response r = { .fd = ev->fd, .response = FAN_ALLOW };
                        if (write(fan, &r, sizeof r) != (ssize_t) sizeof r)
                                return fail("fanotify response");
                        close(ev->fd);
                }
        }

usage:
        fprintf(stderr, "usage: %s [-m] DIR\n"
                "  FAN_OPEN_PERM on DIR's filesystem (-m: on its mount), every open allowed\n", argv[0]);
        return 2;
}
