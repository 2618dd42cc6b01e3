/* manifest.h — expected hashes: the Hugging Face API tree listing as the Hub serves
 * it, and modelgate's own manifest format (DESIGN.md "Expected hashes"). Entries are
 * keyed by absolute path (manifest root + relative path, directories resolved), never
 * by basename. Knows nothing of scanning: it says what is expected and compares. */
#ifndef MODELGATE_MANIFEST_H
#define MODELGATE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"

/* A manifest larger than this is refused: the Hub's largest repositories list a
 * few hundred thousand files, about 60 MB of JSON. */
#define MANIFEST_FILE_MAX ((size_t) 256 << 20)

#define MANIFEST_ERROR_MAX 512

struct manifest_entry {
        char *path;                /* absolute: resolved root + "/" + relative path */
        const char *source;        /* the manifest file it came from */
        bool has_size;
        uint64_t size;
        char sha256[65];           /* "" when the manifest gives none */
        char git_sha1[41];         /* "" when the manifest gives none */
};

struct manifest_set;

int manifest_set_new(struct manifest_set **ret);
void manifest_set_free(struct manifest_set *s);

/* Adds the manifest at `path`, or every *.json file directly inside it when it is a
 * directory. Relative paths in a manifest are taken from `root` when given, else
 * from the manifest's "root" key (modelgate's format), else from the manifest's own
 * directory. Returns 0, or -errno / -EINVAL with a one-line message naming the file
 * and what is wrong (an entry with ".." or an absolute path, a malformed hash, two
 * manifests that disagree about a file). After a failure the set is in an
 * unspecified state: free it. */
int manifest_set_add(struct manifest_set *s, const char *path, const char *root, char *err, size_t errsz);

size_t manifest_set_count(const struct manifest_set *s);
/* True when `path` is one of the manifest files themselves. */
bool manifest_set_is_manifest(const struct manifest_set *s, const char *abs_path);
/* True when abs_path lies under the root of at least one manifest. */
bool manifest_set_covers(const struct manifest_set *s, const char *abs_path);

/* The lookup key of a path as a walk or the kernel names it: its directory resolved
 * with realpath(3), plus its last component. Returns 0 or -errno. */
int manifest_path_key(const char *path, char *ret, size_t retsz);

/* The entry for an absolute key, or NULL. */
const struct manifest_entry *manifest_lookup(const struct manifest_set *s, const char *key);

/* The worker hash flags (WP_FLAG_SHA256, WP_FLAG_GIT_SHA1) needed to check e. */
uint32_t manifest_hash_flags(const struct manifest_entry *e);

/* Compares what the report says of the file (size, sha256, git_sha1) with e and
 * adds a critical HASH_MISMATCH naming expected and actual hash and size. A hash
 * the report lacks (hashing failed) is a mismatch: fail closed. */
void manifest_check(const struct manifest_entry *e, struct scan_report *r);

#endif
