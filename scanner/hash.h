/* hash.h — SHA-256 of a file read through its fd with pread in large chunks, via
 * OpenSSL EVP. Hashing reads every byte: it is done only when something needs the
 * hash (a denial to log, later a manifest), never as part of a plain scan. */
#ifndef MODELGATE_HASH_H
#define MODELGATE_HASH_H

/* Loads the digest implementation. Call before entering the sandbox: OpenSSL may
 * open its configuration and providers the first time. Returns 0 or -errno. */
int hash_prepare(void);

/* Writes 64 lowercase hex digits and a NUL into ret. Returns 0 or -errno. */
int hash_fd_sha256(int fd, char ret[65]);

#endif
