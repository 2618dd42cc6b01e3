/* hash.c — streaming SHA-256 over an fd (pread, 1 MiB chunks; no mapping, so a
 * hash of a multi-GB file costs no address space). The digest is fetched once,
 * before the sandbox, so hashing itself opens nothing. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hash.h"

#define HASH_CHUNK ((size_t) 1 << 20)

static EVP_MD *sha256;

int hash_prepare(void) {
        if (sha256)
                return 0;
        if (!OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL))
                return -EIO;
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (!sha256)
                return -ENOSYS;
        /* One digest now, so that every lazy initialisation has happened. */
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen;
        return EVP_Digest("", 0, md, &mdlen, sha256, NULL) ? 0 : -EIO;
}

int hash_fd_sha256(int fd, char ret[65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        EVP_MD_CTX *ctx;
        unsigned char *buf;
        off_t off = 0;
        int r = 0;

        if (!sha256 && (r = hash_prepare()) < 0)
                return r;
        buf = malloc(HASH_CHUNK);
        ctx = EVP_MD_CTX_new();
        if (!buf || !ctx || !EVP_DigestInit_ex(ctx, sha256, NULL)) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                ssize_t n = pread(fd, buf, HASH_CHUNK, off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto out;
                }
                if (n == 0)
                        break;
                if (!EVP_DigestUpdate(ctx, buf, (size_t) n)) {
                        r = -EIO;
                        goto out;
                }
                off += n;
        }
        if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
                r = -EIO;
                goto out;
        }
        for (unsigned i = 0; i < 32; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
out:
        EVP_MD_CTX_free(ctx);
        free(buf);
        return r;
}
