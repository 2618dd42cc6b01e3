/* attestation.h — signed verdicts: "this content, under this policy hash, is
 * allow|deny", computed once by `modelgate scan --attest` and trusted by the
 * agent instead of a scan. A DSSE envelope (in-toto's Dead Simple Signing
 * Envelope) with an Ed25519 signature over DSSE's pre-authentication encoding;
 * the formats are in modelgate-policy(5). Knows nothing of files being opened:
 * it signs, verifies, and answers "what is attested for this SHA-256". */
#ifndef MODELGATE_ATTESTATION_H
#define MODELGATE_ATTESTATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define ATTEST_PAYLOAD_TYPE "application/vnd.modelgate.verdicts+json"
#define ATTEST_ERROR_MAX 512
/* An envelope file bigger than this is refused: 64 MiB holds ~400,000 files. */
#define ATTEST_FILE_MAX ((size_t) 64 << 20)
/* Attested files the agent keeps (~48 bytes each). */
#define ATTEST_ENTRIES_MAX 4000000UL
#define ATTEST_KEYS_MAX 64

/* ---- signing (modelgate scan --attest) ---- */
struct attest_writer;

int attest_writer_new(const char *policy_sha256, struct attest_writer **ret);
void attest_writer_free(struct attest_writer *w);
/* One file: its SHA-256 (64 hex), size, verdict and the rules of its findings,
 * worst first. Returns 0 or -errno. */
int attest_writer_add(struct attest_writer *w, const char *sha256, uint64_t size, bool deny, const char *const *rules,
                      size_t n_rules);
/* Signs with the Ed25519 private key in PEM file `key_path` and writes the
 * envelope to `out` (written beside it, fsynced, renamed). */
int attest_writer_finish(struct attest_writer *w, const char *key_path, const char *out, char *err, size_t errsz);

/* ---- verifying ---- */
struct attest_keyring;

int attest_keyring_new(struct attest_keyring **ret);
void attest_keyring_free(struct attest_keyring *k);
/* Adds the Ed25519 public key in PEM file `path` (a SubjectPublicKeyInfo, as
 * `openssl pkey -pubout` writes). */
int attest_keyring_add(struct attest_keyring *k, const char *path, char *err, size_t errsz);
size_t attest_keyring_count(const struct attest_keyring *k);

/* What one verified statement says of one file. */
struct attest_fact {
        uint8_t sha256[32];
        uint64_t size;
        bool deny;
        int rule;               /* the first rule named (enum mg_rule), -1 when none or unknown */
};

/* Checks an envelope: its payload type, a signature by a key of the ring over
 * PAE(type, payload), and the payload's shape. On success calls fn for every
 * file of the statement and returns 0; ret_policy gets the statement's
 * policy_sha256. Nothing is reported through fn unless everything checks out.
 * Returns -EINVAL (err says why), -EPERM (no valid signature by a known key). */
int attest_verify(const struct attest_keyring *k, const char *text, size_t len, char ret_policy[65],
                  int (*fn)(void *ud, const struct attest_fact *f), void *ud, char *err, size_t errsz);

/* The attested facts for one policy hash, found by SHA-256. */
struct attest_set;

/* Loads the policy's attestation_keys, then each of its attestations (a file, or
 * a directory whose *.json files are read), keeping statements that verify and
 * were made under policy_sha256(p). Never fails for a bad key or envelope: each
 * one is reported through warn (one line naming the file) and skipped. Returns 0
 * or -ENOMEM. */
int attest_set_load(const struct policy *p, struct attest_set **ret, void (*warn)(void *ud, const char *line),
                    void *ud);
void attest_set_free(struct attest_set *s);
size_t attest_set_count(const struct attest_set *s);
bool attest_set_lookup(const struct attest_set *s, const uint8_t sha256[32], struct attest_fact *ret);

#endif
