/* fault-worker.c — a stand-in scanner worker for tests/agent-faults.py, run by
 * modelgated through --worker-exe. It reads what to be from the file
 * "fault-worker.mode" beside its own executable at every start (so a test can
 * change it while the daemon runs) and appends that mode to "fault-worker.starts"
 * there (so a test can count starts). It never parses a file: it either becomes
 * the real worker or misbehaves on purpose.
 *
 * Every mode but real and crash first answers one request, the probe that
 * modelgated sends a new worker (an empty file), with an empty report, as the
 * real worker would; the misbehaviour is for the next, a real file.
 *
 *   real PATH       exec PATH as the real worker ("modelgate worker")
 *   crash           abort at once, before the probe
 *   hang            then never read the socket again
 *   silent          then read the request, never answer
 *   crash-on-job    then read the request and abort
 *   garbage         then read the request, answer bytes that are not a report */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "report.h"
#include "worker-proto.h"

static uint64_t read_request(void) {
        uint64_t job;
        uint32_t flags;
        int fd;
        if (wp_recv_request(WORKER_FD, &job, &flags, &fd) < 0)
                _exit(0);   /* the daemon closed the socket */
        close(fd);
        return job;
}

static void answer_probe(void) {
        static struct scan_report r;
        report_init(&r);
        if (wp_send_report(WORKER_FD, read_request(), &r, 0) < 0)
                _exit(0);
}

int main(void) {
        char self[4096], path[4200], mode[4096] = "";
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0)
                return 127;
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (!slash)
                return 127;
        *slash = '\0';

        snprintf(path, sizeof(path), "%s/fault-worker.mode", self);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 127;
        n = read(fd, mode, sizeof(mode) - 1);
        close(fd);
        if (n <= 0)
                return 127;
        mode[n] = '\0';
        mode[strcspn(mode, "\n")] = '\0';

        snprintf(path, sizeof(path), "%s/fault-worker.starts", self);
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
                char line[64];
                int len = snprintf(line, sizeof(line), "%.40s %d\n", mode, (int) getpid());
                if (write(fd, line, (size_t) len) < 0) { /* counting is best effort */ }
                close(fd);
        }

        if (strncmp(mode, "real ", 5) == 0) {
                char *const argv[] = { (char *) "modelgate-worker", (char *) "worker", NULL };
                char *const envp[] = { NULL };
                execve(mode + 5, argv, envp);
                return 127;
        }
        if (strcmp(mode, "crash") == 0)
                abort();
        answer_probe();
        if (strcmp(mode, "hang") == 0)
                for (;;)
                        pause();
        if (strcmp(mode, "silent") == 0) {
                read_request();
                for (;;)
                        pause();
        }
        if (strcmp(mode, "crash-on-job") == 0) {
                read_request();
                abort();
        }
        if (strcmp(mode, "garbage") == 0) {
                read_request();
                static const char junk[] = "this is not a worker message";
                if (send(WORKER_FD, junk, sizeof(junk), 0) < 0) { /* the daemon decides */ }
                for (;;)
                        pause();
        }
        return 127;
}
