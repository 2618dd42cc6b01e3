/* convert-write.h — the front end's half of `modelgate convert`: lays out a
 * safetensors file from a validated conversion plan and writes it. Input bytes are
 * read only at the ranges the plan names and copied, never interpreted; the
 * output is written to a temporary file beside it, fsynced and renamed into place,
 * so it either appears whole or not at all. */
#ifndef MODELGATE_CONVERT_WRITE_H
#define MODELGATE_CONVERT_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convert-plan.h"

/* The reference crate's MAX_HEADER_SIZE; a longer header would not load. */
#define CONVERT_HEADER_MAX 100000000

/* A strided tensor is gathered from an in-memory copy of the part of its storage
 * it reads; that part may be at most this large (a transposed 16k x 16k fp32
 * weight just fits; a larger one is refused, naming it). */
#define CONVERT_GATHER_MAX ((uint64_t) 1 << 30)

#define CONVERT_ERROR_MAX 512

struct convert_layout {
        char *header;            /* 8-byte length + JSON header, padded with spaces */
        size_t header_len;       /* bytes of the above, a multiple of 8 */
        size_t sha_at;           /* where the 64 hex digits of the source hash go */
        size_t *order;           /* tensor indices in data order */
        uint64_t *data_off;      /* data section offset of order[i] */
        uint64_t data_len;
};

/* Builds the header for plan p: tensors in data order (larger elements first,
 * then by name), __metadata__ with format, source_format, source_sha256 (64
 * placeholder characters, filled in by convert_set_sha256()), license when not
 * NULL, the plan's values and tied names. `unnamed` names a tensor the plan left
 * unnamed (the single array of a .npy). Checks what a single message could not:
 * unique names, no key clash, header size. Returns 0 or -EINVAL/-ENOMEM with err. */
int convert_layout(const struct plan *p, const char *unnamed, const char *license, struct convert_layout *ret,
                   char *err, size_t errsz);
void convert_layout_free(struct convert_layout *l);
void convert_set_sha256(struct convert_layout *l, const char sha256[65]);

/* Output file: a temporary file in OUT's directory until convert_out_commit(). */
struct convert_out {
        int fd, dir_fd;
        char *base;              /* OUT's last component */
        char tmp[64];            /* named temporary, when O_TMPFILE cannot be linked */
        bool named;
};

int convert_out_open(const char *path, struct convert_out *ret, char *err, size_t errsz);
/* Writes the data of every tensor in layout order from in_fd (gathering strided
 * ones) and flushes it to disk. The header is written by convert_out_commit(). */
int convert_copy_data(int in_fd, const struct plan *p, const struct convert_layout *l, struct convert_out *o,
                      char *err, size_t errsz);
/* Header, fsync, then into place: replacing OUT only when `force`. Returns 0 or -errno. */
int convert_out_commit(struct convert_out *o, const struct convert_layout *l, const char *path, bool force,
                       char *err, size_t errsz);
/* Removes what was written; OUT is untouched. Safe after commit (does nothing). */
void convert_out_abort(struct convert_out *o);

#endif
