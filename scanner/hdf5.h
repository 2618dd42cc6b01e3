/* hdf5.h — just enough of HDF5 to read what Keras reads from an .h5 file before it
 * builds a model: the root group's model_config (and training_config) attributes. */
#ifndef MODELGATE_HDF5_H
#define MODELGATE_HDF5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

#define HDF5_SIGNATURE "\x89HDF\r\n\x1a\n"
#define HDF5_SIGNATURE_LEN 8

/* Where the HDF5 library looks for the superblock (H5FD_locate_signature): offset 0,
 * then every power of two from 512 while it lies inside the file. A user block of
 * any such size is legal, so the search has no bound short of the file's size;
 * it costs at most 55 probes. Returns true with the offset. */
bool hdf5_find_superblock(const uint8_t *buf, size_t len, uint64_t *ret_offset);

/* The superblock signature at offset 0. */
bool hdf5_sniff(const uint8_t *buf, size_t len);

/* The signature at a user-block offset (512, 1024, …) and not at 0: h5py and Keras
 * open such a file as HDF5 whatever its first bytes are. */
bool hdf5_sniff_userblock(const uint8_t *buf, size_t len);

/* Reads the root group's attributes. FMT_KERAS_H5 when there is a model_config
 * attribute (its JSON goes to keras_config_scan()), FMT_HDF5 otherwise. */
enum mg_format hdf5_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len);

#endif
