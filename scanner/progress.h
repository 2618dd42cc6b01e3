/* progress.h — the one-line progress display of `modelgate scan` on standard
 * error: files and bytes done of the totals a counting pre-walk found,
 * allowed/denied so far, rates and an estimate of the time left. Redrawn at most
 * PROGRESS_REDRAW_MS apart; the line is cleared before any other message and at
 * the end, so a terminal keeps only real output. */
#ifndef MODELGATE_PROGRESS_H
#define MODELGATE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define PROGRESS_REDRAW_MS 100   /* ~10 redraws a second: readable, and cheap */

struct progress {
        FILE *f;                 /* NULL: no display (every call is a no-op) */
        unsigned width;          /* terminal columns, 0 when unknown */
        bool counting, shown;
        uint64_t files_total, bytes_total;
        uint64_t files_done, bytes_done;
        unsigned long allowed, denied;
        uint64_t start_ms, drawn_ms;
};

/* f: where to draw (standard error), or NULL for no display. */
void progress_init(struct progress *p, FILE *f);

/* While the pre-walk counts: files and bytes found so far. */
void progress_counted(struct progress *p, uint64_t files, uint64_t bytes, bool done);

void progress_file_done(struct progress *p, uint64_t size, bool denied);

/* Redraws when PROGRESS_REDRAW_MS have passed (rates move while a file is slow). */
void progress_tick(struct progress *p);

/* Erases the line, for another message or at the end; the next tick draws it again. */
void progress_clear(struct progress *p);

/* The final state, drawn once, then erased: the end of the display. */
void progress_done(struct progress *p);

#endif
