/* worker.h — the sandboxed scanner worker: `modelgate worker`, started by a front
 * end with its socket on WORKER_FD. Not for users. */
#ifndef MODELGATE_WORKER_H
#define MODELGATE_WORKER_H

/* Never returns on success; returns an exit status when it cannot start. */
int worker_main(void);

#endif
