/* convert.h — the worker's half of `modelgate convert`: reads a PyTorch checkpoint
 * (zip or legacy layout), a .npy or an .npz from a read-only mapping and works out
 * the conversion plan (convert-plan.h). It opens and writes nothing; the front end
 * copies the bytes the plan names. */
#ifndef MODELGATE_CONVERT_H
#define MODELGATE_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "convert-plan.h"

/* Nesting of containers the flattening follows (a training checkpoint nests 4–5
 * deep); deeper, or a cycle, is refused. */
#define CONVERT_DEPTH_MAX 32

/* Container entries the flattening visits in total: a memo can make a small
 * pickle a huge DAG; past this the file is refused. */
#define CONVERT_VISITS_MAX ((size_t) 1 << 23)

/* A list of scalars goes into __metadata__ when it has at most this many items
 * (optimizer betas, a layer-size list); longer ones are dropped and listed. */
#define CONVERT_LIST_MAX 64

/* Fills *ret (plan_init'ed here). Returns 0, or the plan's error: -EINVAL when the
 * file cannot be converted faithfully (ret->message names the key and the reason),
 * -ENOMEM. Never executes or imports anything. */
int convert_plan_buffer(const uint8_t *buf, size_t len, struct plan *ret);

/* Maps fd read-only and calls convert_plan_buffer(). */
int convert_plan_fd(int fd, struct plan *ret);

#endif
