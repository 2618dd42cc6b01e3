/* attest-cmd.h — `modelgate scan --attest` collection and `modelgate attest`. */
#ifndef MODELGATE_ATTEST_CMD_H
#define MODELGATE_ATTEST_CMD_H

#include "attestation.h"
#include "policy.h"
#include "report.h"

/* Adds one decided file to the statement being built; -EIO when it has no hash. */
int attest_cmd_collect(struct attest_writer *w, const char *path, const struct scan_report *r, enum mg_verdict v);
/* `modelgate attest verify ...`; argv[0] is "attest". Returns the exit status. */
int attest_cmd_main(int argc, char **argv);

#endif
