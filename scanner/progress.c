/* progress.c — draws the progress line (see progress.h). Only counters: nothing
 * per file is kept. Writes go to an unbuffered stderr, each line in one call, and
 * are cut to the terminal's width so that a carriage return always returns to
 * its start. */
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "progress.h"
#include "worker-pool.h"

#define PROGRESS_LINE_MAX 512

void progress_init(struct progress *p, FILE *f) {
        struct winsize ws;

        memset(p, 0, sizeof(*p));
        p->f = f;
        if (f && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
                p->width = ws.ws_col;
        p->start_ms = monotonic_ms();
}

static void put_bytes(char *dst, size_t size, uint64_t n) {
        if (n >= 1000000000000ULL)
                snprintf(dst, size, "%.2f TB", (double) n / 1e12);
        else if (n >= 1000000000ULL)
                snprintf(dst, size, "%.2f GB", (double) n / 1e9);
        else
                snprintf(dst, size, "%.1f MB", (double) n / 1e6);
}

static void put_duration(char *dst, size_t size, uint64_t s) {
        if (s >= 3600)
                snprintf(dst, size, "%llu:%02llu:%02llu", (unsigned long long) (s / 3600),
                         (unsigned long long) (s / 60 % 60), (unsigned long long) (s % 60));
        else
                snprintf(dst, size, "%llu:%02llu", (unsigned long long) (s / 60), (unsigned long long) (s % 60));
}

static void draw(struct progress *p, uint64_t now) {
        char line[PROGRESS_LINE_MAX], done[32], total[32], eta[32] = "?";
        double secs = (double) (now - p->start_ms) / 1000.0;
        double fps = secs > 0 ? (double) p->files_done / secs : 0;
        double mbps = secs > 0 ? (double) p->bytes_done / 1e6 / secs : 0;
        size_t n;

        if (p->counting) {
                put_bytes(total, sizeof(total), p->bytes_total);
                n = (size_t) snprintf(line, sizeof(line), "counting files: %llu, %s",
                                      (unsigned long long) p->files_total, total);
        } else {
                put_bytes(done, sizeof(done), p->bytes_done);
                put_bytes(total, sizeof(total), p->bytes_total);
                /* By files, not bytes: most formats are decided from their headers,
                 * so bytes say little about the time a file takes. */
                if (fps > 0 && p->files_total >= p->files_done)
                        put_duration(eta, sizeof(eta), (uint64_t) ((double) (p->files_total - p->files_done) / fps + 0.5));
                n = (size_t) snprintf(line, sizeof(line),
                                      "%llu/%llu files (%llu%%), %s/%s, %lu allowed, %lu denied, %.0f files/s, %.1f MB/s, ETA %s",
                                      (unsigned long long) p->files_done, (unsigned long long) p->files_total,
                                      (unsigned long long) (p->files_total ? p->files_done * 100 / p->files_total : 100),
                                      done, total, p->allowed, p->denied, fps, mbps, eta);
        }
        if (n >= sizeof(line))
                n = sizeof(line) - 1;
        if (p->width && n > p->width - 1)
                n = p->width - 1;
        line[n] = '\0';
        fprintf(p->f, "\r%s\033[K", line);
        fflush(p->f);
        p->shown = true;
        p->drawn_ms = now;
}

void progress_tick(struct progress *p) {
        uint64_t now;

        if (!p->f)
                return;
        now = monotonic_ms();
        /* Also after a clear: with the report on the same terminal, the line is
         * cleared before each file's lines and comes back at the usual pace. */
        if (p->drawn_ms && now - p->drawn_ms < PROGRESS_REDRAW_MS)
                return;
        draw(p, now);
}

void progress_counted(struct progress *p, uint64_t files, uint64_t bytes, bool done) {
        if (!p->f)
                return;
        p->files_total = files;
        p->bytes_total = bytes;
        p->counting = !done;
        if (done)
                p->start_ms = monotonic_ms();   /* rates count from the scan's start */
        else
                progress_tick(p);
}

void progress_file_done(struct progress *p, uint64_t size, bool denied) {
        if (!p->f)
                return;
        p->files_done++;
        p->bytes_done += size;
        if (denied)
                p->denied++;
        else
                p->allowed++;
        progress_tick(p);
}

void progress_clear(struct progress *p) {
        if (!p->f || !p->shown)
                return;
        fputs("\r\033[K", p->f);
        fflush(p->f);
        p->shown = false;
}

void progress_done(struct progress *p) {
        if (!p->f)
                return;
        draw(p, monotonic_ms());   /* the final counts, for a log of stderr */
        progress_clear(p);
}
