/* repository.h — which model repository a scanned file belongs to (a Hugging Face
 * cache entry, or an org/name directory under the PATH the scan was given), and
 * which shard of a split audit a file falls in. Pure string work on paths: no
 * file system access, so every machine of a split audit agrees. */
#ifndef MODELGATE_REPOSITORY_H
#define MODELGATE_REPOSITORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "org/name": two directory names of at most NAME_MAX bytes each, and the NUL. */
#define REPOSITORY_MAX 512
#define SHARD_COUNT_MAX 65536   /* more machines than any audit uses; bounds the parse */

/* The repository of `path`, a file the walk found under `root` (the PATH argument
 * it came from; path == root for a file given directly), as raw bytes:
 *  - the last directory component named models--ORG--NAME, datasets--ORG--NAME or
 *    spaces--ORG--NAME (a Hugging Face cache) gives ORG/NAME (NAME alone when the
 *    repository has no organisation);
 *  - else, a file at least three levels below root (root/ORG/NAME/file) gives ORG/NAME.
 * Returns false (ret untouched) when neither applies. */
bool repository_of(const char *path, const char *root, char *ret, size_t size);

/* The shard (1..count) of a file: FNV-1a 64 of its repository when it has one,
 * else of its path relative to root (its file name when it is root), mod count. */
unsigned shard_of(const char *path, const char *root, unsigned count);

/* Parses "I/N" (1 <= I <= N <= SHARD_COUNT_MAX). Returns 0, or -EINVAL with a
 * reason in err. */
int shard_parse(const char *arg, unsigned *ret_index, unsigned *ret_count, char *err, size_t errsz);

uint64_t fnv1a64(const void *data, size_t len);

#endif
