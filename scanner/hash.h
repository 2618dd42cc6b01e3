/* hash.h — SHA-256 and the git blob SHA-1 of a file read through its fd with pread
 * in large chunks, via OpenSSL EVP. Hashing reads every byte: it is done only when
 * something expects a hash (a manifest entry, a Hugging Face cache blob name, a
 * denial to log), never as part of a plain scan. */
#ifndef MODELGATE_HASH_H
#define MODELGATE_HASH_H

#include <stddef.h>

#define HASH_SHA256  0x1u   /* the file's SHA-256 (a Git LFS oid, a Hub blob name) */
#define HASH_GIT_SHA1 0x2u  /* SHA-1 of "blob <size>\0" + content: git's object id */

/* Loads the digest implementations. Call before entering the sandbox: OpenSSL may
 * open its configuration and providers the first time. Returns 0 or -errno. */
int hash_prepare(void);

/* Computes the digests named in `what` in one pass over the file. Each wanted one
 * is written as lowercase hex and a NUL (64 + 1 and 40 + 1 bytes). The file's size
 * is taken from the fd; a file that changes size while it is read is -EAGAIN.
 * Returns 0 or -errno. */
int hash_fd(int fd, unsigned what, char ret_sha256[65], char ret_git_sha1[41]);

/* Shorthand for hash_fd(fd, HASH_SHA256, ret, NULL). */
int hash_fd_sha256(int fd, char ret[65]);

#endif
