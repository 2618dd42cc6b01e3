/* report-merge.h — `modelgate report merge`: the JSON reports of a scan split
 * with --shard, joined into the report a single machine would have written. */
#ifndef MODELGATE_REPORT_MERGE_H
#define MODELGATE_REPORT_MERGE_H

#include <stdio.h>

/* argv[0] is "report". Returns the exit status: 0 every file allowed, 1 at least
 * one denied, 2 usage error or a report refused (the message names it). */
int cmd_report(int argc, char **argv, void (*usage)(FILE *f));

#endif
