/* pickle.h — a pickle virtual machine that executes nothing: it walks opcodes the
 * way CPython's C unpickler reads a file, simulates the stack and memo, and records
 * every import with how it was reached. */
#ifndef MODELGATE_PICKLE_H
#define MODELGATE_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

/* What one stream told us, for the format parsers that call the VM. */
struct pickle_result {
        size_t consumed;          /* bytes up to and including STOP (or the error) */
        bool complete;            /* reached STOP */
        bool error;               /* a parse error was reported (MALFORMED) */
        int protocol;             /* from PROTO, 0 when absent */
        /* The value STOP returned, when it is a small int (legacy torch magic). */
        bool result_is_int;
        bool result_int_big;      /* did not fit in 64 bits (the magic does not) */
        uint8_t result_int_bytes[16];   /* little-endian two's complement, LONG1 form */
        size_t result_int_len;
        bool joblib;              /* saw joblib NumpyArrayWrapper objects */
        /* When the value STOP returned is a tuple: the import named by its last
         * item (legacy torch storage records end in the storage class). */
        char result_last_global[2 * REPORT_NAME_MAX];
};

/* Scans one stream starting at buf[0]. Findings go to ctx. */
void pickle_scan_one(struct scan_ctx *ctx, const uint8_t *buf, size_t len,
                     struct pickle_result *ret);

/* Scans back-to-back streams until the buffer ends. Bytes after a complete stream
 * that do not parse as a pickle are reported (MALFORMED, low) and end the scan.
 * A legacy torch file (first stream returns torch's magic number) is read as
 * torch reads it: five streams, then raw storage bytes that are never unpickled.
 * Returns FMT_PICKLE, FMT_JOBLIB or FMT_PYTORCH_LEGACY. */
enum mg_format pickle_scan_all(struct scan_ctx *ctx, const uint8_t *buf, size_t len);

/* torch's legacy MAGIC_NUMBER, 0x1950a86a20f9469cfc6c, as LONG1 bytes. */
bool pickle_result_is_torch_magic(const struct pickle_result *r);

/* Does this look like the start of a pickle stream (any protocol, including
 * headerless protocol 0/1)? Cheap, for sniffing. */
bool pickle_sniff(const uint8_t *buf, size_t len);

#endif
