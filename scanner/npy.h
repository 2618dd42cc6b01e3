/* npy.h — numpy .npy files: the header (a Python dict literal) parsed the way
 * numpy.lib.format reads it, object arrays handed to the pickle VM (their data is
 * one pickle stream), numeric arrays checked against the bytes present. */
#ifndef MODELGATE_NPY_H
#define MODELGATE_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

#define NPY_MAGIC     "\x93NUMPY"
#define NPY_MAGIC_LEN 6

/* Longest header we parse at all. Above numpy's own cap (10000 characters) so that
 * object arrays loaded with allow_pickle=True, which lifts that cap, are still
 * read; beyond it the file is refused unread. */
#define NPY_HEADER_PARSE_MAX 65536

/* Bytes npy_scan_prefix() may need: magic, version, a 4-byte length, the header. */
#define NPY_PREFIX_MAX (NPY_MAGIC_LEN + 2 + 4 + NPY_HEADER_PARSE_MAX)

/* Dimensions of a shape kept in the header for `modelgate convert`. */
#define NPY_SHAPE_KEEP 8

struct npy_header {
        uint8_t major, minor;
        size_t data_offset;       /* first byte after the header */
        bool has_object;          /* the data is a pickle stream */
        bool fortran_order;
        bool size_known;          /* false when the dtype was not understood */
        uint64_t data_size;       /* bytes of array data, when size_known and !has_object */
        char descr[16];           /* descr when it is a short plain string ("<f4"), else "" */
        bool shape_kept;          /* shape has at most NPY_SHAPE_KEEP dimensions */
        uint8_t ndim;
        uint64_t shape[NPY_SHAPE_KEEP];
};

/* The magic "\x93NUMPY" at buf[0]. */
bool npy_sniff(const uint8_t *buf, size_t len);

/* Parses the magic, version and header dict at buf[0]. Problems are MALFORMED
 * findings in ctx. Returns 0; -ENODATA when the header does not fit in len bytes
 * (nothing reported); -EBADMSG when the header is invalid (reported). */
int npy_header_parse(struct scan_ctx *ctx, const uint8_t *buf, size_t len, struct npy_header *ret);

/* A whole .npy in [buf, buf+len): header, then the pickle of an object array or
 * the size check of a numeric one. */
void npy_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len);

/* For archive members: buf holds only the first prefix_len of total_len bytes.
 * Returns 0 when that was enough (a numeric array, its size checked against
 * total_len, or an invalid header, reported); 1 when the array holds objects: *ret
 * is filled in and the caller reads the whole member and calls npy_scan_objects();
 * -ENODATA when the header is longer than the prefix (nothing reported: call again
 * with NPY_PREFIX_MAX bytes, or npy_scan() on the whole member). */
int npy_scan_prefix(struct scan_ctx *ctx, const uint8_t *buf, size_t prefix_len, uint64_t total_len,
                    struct npy_header *ret);

/* The pickle after the header of an object array; [buf, buf+len) is the whole file. */
void npy_scan_objects(struct scan_ctx *ctx, const struct npy_header *h, const uint8_t *buf, size_t len);

#endif
