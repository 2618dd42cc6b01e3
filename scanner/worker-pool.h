/* worker-pool.h — the front end's side of a sandboxed worker: start it
 * (fork+exec, socket on WORKER_FD), hand it a file fd, collect its report, and
 * kill it when it misbehaves. Used by `modelgate scan`; built for modelgated's
 * event loop too (non-blocking socket, one job per worker, deadlines). */
#ifndef MODELGATE_WORKER_POOL_H
#define MODELGATE_WORKER_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "worker-proto.h"

struct worker {
        pid_t pid;
        int sock;               /* non-blocking, CLOEXEC */
        bool busy;
        uint64_t job;
        uint64_t deadline_ms;   /* CLOCK_MONOTONIC */
        struct wp_receiver rx;
};

/* Starts `exe worker` with its socket on WORKER_FD. Returns 0 or -errno. */
int worker_start(struct worker *w, const char *exe);

/* Gives the worker one file. The fd stays the caller's (the kernel duplicated it
 * into the worker). Returns 0 or -errno (the worker is then broken). */
int worker_submit(struct worker *w, uint64_t job, uint32_t flags, int fd, struct scan_report *r,
                  uint64_t deadline_ms);

/* Reads what the worker sent. Returns 1 when the job's report is complete, 0 when
 * more is expected, -EPIPE when the worker died, -EBADMSG on a protocol violation. */
int worker_read(struct worker *w);

/* Kills (SIGKILL) and reaps the worker, closes its socket. Safe to call twice. */
void worker_stop(struct worker *w);

/* Closes the socket (the worker exits on EOF) and reaps it. */
void worker_finish(struct worker *w);

/* Reaps stopped workers that could not be killed and have exited since (call on
 * SIGCHLD). */
void worker_reap_orphans(void);

uint64_t monotonic_ms(void);

#endif
