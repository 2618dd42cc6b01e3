/* verdict-store.h — verdicts that survive a restart: an append-only file of
 * fixed-size, checksummed records under the state directory, and the in-memory
 * index of the records made under one policy hash. A record is never trusted
 * unless its magic, version and CRC-32 check out; a torn or damaged record is
 * skipped, never read as a verdict. The layout is in modelgated(8).
 *
 * What a record holds is the file's *content verdict*: the policy's verdict on
 * the scan's facts, without the expected-hash check (HASH_MISMATCH, the
 * manifests and require_manifest). That check depends on the path the file is
 * opened by and on manifest files outside the policy hash, so the agent repeats
 * it on every lookup against the SHA-256 the record carries (see modelgated.c).
 * `modelgate scan --store` keeps its content verdicts in the same layout; it
 * also records the detected format (has_format), which the agent neither writes
 * nor needs. */
#ifndef MODELGATE_VERDICT_STORE_H
#define MODELGATE_VERDICT_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

/* Live entries kept for one policy: ~100 bytes of memory each (1,000,000 ~ 100 MB),
 * more files than any model host we know of holds; beyond it new verdicts are
 * simply not stored (they are still cached in memory). */
#define STORE_ENTRIES_MAX 1000000UL
/* The file may hold this many records (dead ones included) before appends stop
 * until the next start compacts it: 2 x 128 MB at most on disk. */
#define STORE_RECORDS_MAX (2 * STORE_ENTRIES_MAX)
#define STORE_RECORD_SIZE 128
#define STORE_FILE_NAME "verdicts.db"

/* What an inode's content is, as far as a changed file can tell: any write,
 * truncate or chmod moves ctime, and ctime cannot be set back by a user. */
struct store_key {
        uint64_t dev, ino, size;
        int64_t ctime_sec, ctime_nsec;
};

struct store_verdict {
        uint8_t deny;           /* the content verdict */
        uint8_t has_rule;
        uint8_t rule;           /* worst finding (not HASH_MISMATCH), for the log */
        uint8_t severity;
        uint8_t has_sha256;
        uint8_t sha256[32];     /* the content's SHA-256, when it was computed */
        uint8_t has_format;
        uint8_t format;         /* enum mg_format, for `modelgate scan --store`'s reports;
                                 * opaque here: the reader checks its range */
};

struct store_load_info {
        unsigned long records;          /* whole records in the file, header excluded */
        unsigned long loaded;           /* live entries for this policy */
        unsigned long other_policy;     /* records made under another policy hash */
        unsigned long superseded;       /* older records of a key seen again */
        unsigned long corrupt;          /* bad magic, version or checksum */
        unsigned long torn_bytes;       /* a partial record at the end (cut off) */
        unsigned long over_cap;         /* live entries beyond STORE_ENTRIES_MAX, dropped */
        bool compacted;
        char aside[4096 + 32];          /* where an unreadable file was moved, or "" */
};

struct store_index;
struct verdict_store;

void store_key_from_stat(struct store_key *k, const struct stat *st);

/* Opens (creating it 0600, and the directory 0700) DIR/verdicts.db, takes an
 * exclusive lock, loads the records for `policy`, cuts a torn tail, and compacts
 * the file when most of it is dead. A file that is not a store (wrong header) is
 * renamed aside (info->aside) and a new one started. `cap` bounds live entries
 * (0: STORE_ENTRIES_MAX). Returns 0 or -errno (-EBUSY: another process holds it;
 * -EPERM: the directory or file belongs to another user, or the directory is
 * writable by group or others). */
int verdict_store_open(const char *dir, const uint8_t policy[32], unsigned long cap, struct verdict_store **ret,
                       struct store_load_info *info);
void verdict_store_close(struct verdict_store *s);

/* Builds the index of `policy`'s records from the open store without changing the
 * file (pread only): for a reload thread, while the event thread keeps appending. */
int verdict_store_load_index(struct verdict_store *s, const uint8_t policy[32], struct store_index **ret,
                             struct store_load_info *info);
/* Makes `idx` (for `policy`) the index lookups and appends use; frees the old one. */
void verdict_store_use_index(struct verdict_store *s, const uint8_t policy[32], struct store_index *idx);
void store_index_free(struct store_index *idx);

bool verdict_store_get(const struct verdict_store *s, const struct store_key *k, struct store_verdict *ret);
/* Any live entry of this policy whose content had this SHA-256. */
bool verdict_store_get_content(const struct verdict_store *s, const uint8_t sha256[32], struct store_verdict *ret);

/* Appends one record (one write() of STORE_RECORD_SIZE bytes, no fsync: a verdict
 * lost to a crash costs one scan) and indexes it. Returns 0, -ENOSPC when a cap is
 * reached, or -errno. */
int verdict_store_put(struct verdict_store *s, const struct store_key *k, const struct store_verdict *v);
unsigned long verdict_store_count(const struct verdict_store *s);

/* Hex (64 lowercase digits) <-> 32 bytes. */
bool sha256_from_hex(const char *hex, uint8_t ret[32]);
void sha256_to_hex(const uint8_t sha[32], char ret[65]);

#endif
