/* attestation.c — DSSE envelopes of modelgate verdicts: writes them signed with
 * Ed25519, verifies them against configured public keys, and indexes what the
 * verified ones say by SHA-256. An envelope is untrusted input until its
 * signature checks out, and its payload is still checked field by field after;
 * a statement with one bad field is refused whole. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attestation.h"
#include "report.h"

#define ED25519_SIG_BYTES 64
#define ATTEST_RULES_MAX 32             /* rule names per file in a statement */

static int errf(char *err, size_t errsz, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int errf(char *err, size_t errsz, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
        return r;
}

static bool is_hex64(const char *s) {
        size_t i;
        for (i = 0; i < 64 && ((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')); i++)
                ;
        return i == 64 && s[64] == '\0';
}

static void hex_to_bytes(const char *hex, uint8_t out[32]) {
        for (size_t i = 0; i < 32; i++) {
                int hi = hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10;
                int lo = hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10;
                out[i] = (uint8_t) (hi << 4 | lo);
        }
}

static void bytes_to_hex(const uint8_t *b, size_t n, char *out) {
        static const char d[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = d[b[i] >> 4];
                out[2 * i + 1] = d[b[i] & 15];
        }
        out[2 * n] = '\0';
}

/* Standard base64 with padding, strictly: length a multiple of 4, no whitespace. */
static int base64_decode(const char *in, uint8_t **ret, size_t *ret_len) {
        size_t n = strlen(in), pad = 0;
        if (n % 4 != 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char c = in[i];
                bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                          c == '/' || (c == '=' && i >= n - 2);
                if (!ok)
                        return -EINVAL;
        }
        if (n >= 1 && in[n - 1] == '=')
                pad++;
        if (n >= 2 && in[n - 2] == '=') {
                if (in[n - 1] != '=')
                        return -EINVAL;
                pad++;
        }
        uint8_t *out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        int m = n ? EVP_DecodeBlock(out, (const unsigned char *) in, (int) n) : 0;
        if (m < 0 || (size_t) m < pad) {
                free(out);
                return -EINVAL;
        }
        *ret = out;
        *ret_len = (size_t) m - pad;
        return 0;
}

static char *base64_encode(const uint8_t *in, size_t n) {
        char *out = malloc((n + 2) / 3 * 4 + 1);
        if (out)
                EVP_EncodeBlock((unsigned char *) out, in, (int) n);
        return out;
}

/* DSSE v1 pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body. */
static uint8_t *pae(const char *type, const uint8_t *body, size_t body_len, size_t *ret_len) {
        char head[128];
        int h = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", strlen(type), type, body_len);
        if (h < 0 || (size_t) h >= sizeof(head))
                return NULL;
        uint8_t *out = malloc((size_t) h + body_len);
        if (!out)
                return NULL;
        memcpy(out, head, (size_t) h);
        memcpy(out + h, body, body_len);
        *ret_len = (size_t) h + body_len;
        return out;
}

/* keyid: lowercase hex SHA-256 of the DER SubjectPublicKeyInfo. */
static int key_id(EVP_PKEY *k, char ret[65]) {
        unsigned char *der = NULL, md[32];
        unsigned int md_len = 0;
        int n = i2d_PUBKEY(k, &der);
        if (n <= 0)
                return -EINVAL;
        int ok = EVP_Digest(der, (size_t) n, md, &md_len, EVP_sha256(), NULL) == 1 && md_len == 32;
        OPENSSL_free(der);
        if (!ok)
                return -EINVAL;
        bytes_to_hex(md, 32, ret);
        return 0;
}

static int read_small_file(const char *path, char **ret, size_t *ret_len, size_t max) {
        /* O_NONBLOCK: a FIFO put where a statement is expected must not hold the
         * reload (and the daemon's exit, which waits for it) until a writer comes;
         * it is refused below. On a regular file the flag changes nothing. */
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0)
                return -errno;
        int r = fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : (size_t) st.st_size > max ? -EFBIG : 0;
        if (r < 0) {
                close(fd);
                return r;
        }
        char *buf = malloc((size_t) st.st_size + 1);
        size_t got = 0;
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t) n;
        }
        close(fd);
        buf[got] = '\0';
        *ret = buf;
        *ret_len = got;
        return 0;
}

/* ---- signing ------------------------------------------------------------------ */

struct attest_writer {
        char policy_sha256[65];
        cJSON *files;
};

int attest_writer_new(const char *policy_sha256, struct attest_writer **ret) {
        struct attest_writer *w = calloc(1, sizeof(*w));
        if (!w || !(w->files = cJSON_CreateArray())) {
                free(w);
                return -ENOMEM;
        }
        snprintf(w->policy_sha256, sizeof(w->policy_sha256), "%s", policy_sha256);
        *ret = w;
        return 0;
}

void attest_writer_free(struct attest_writer *w) {
        if (w) {
                cJSON_Delete(w->files);
                free(w);
        }
}

int attest_writer_add(struct attest_writer *w, const char *sha256, uint64_t size, bool deny, const char *const *rules,
                      size_t n_rules) {
        cJSON *f = cJSON_CreateObject(), *r = cJSON_CreateArray();
        if (!is_hex64(sha256)) {
                cJSON_Delete(f);
                cJSON_Delete(r);
                return -EINVAL;
        }
        bool ok = f && r && cJSON_AddStringToObject(f, "sha256", sha256) &&
                  cJSON_AddNumberToObject(f, "size", (double) size) &&
                  cJSON_AddStringToObject(f, "verdict", deny ? "deny" : "allow");
        for (size_t i = 0; ok && i < n_rules && i < ATTEST_RULES_MAX; i++) {
                cJSON *s = cJSON_CreateString(rules[i]);
                ok = s && cJSON_AddItemToArray(r, s);
        }
        if (ok && cJSON_AddItemToObject(f, "rules", r)) {
                r = NULL;
                ok = cJSON_AddItemToArray(w->files, f);
        } else
                ok = false;
        if (!ok) {
                cJSON_Delete(r);
                cJSON_Delete(f);
                return -ENOMEM;
        }
        return 0;
}

static EVP_PKEY *load_private_key(const char *path, char *err, size_t errsz) {
        FILE *f = fopen(path, "re");
        EVP_PKEY *k;
        if (!f) {
                errf(err, errsz, 0, "%s: %s", path, strerror(errno));
                return NULL;
        }
        k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (!k)
                errf(err, errsz, 0, "%s: not a PEM private key", path);
        else if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
                errf(err, errsz, 0, "%s: not an Ed25519 key (openssl genpkey -algorithm ed25519)", path);
                EVP_PKEY_free(k);
                k = NULL;
        }
        return k;
}

static char *issued_now(char buf[32]) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return buf;
}

int attest_writer_finish(struct attest_writer *w, const char *key_path, const char *out, char *err, size_t errsz) {
        EVP_PKEY *k = load_private_key(key_path, err, errsz);
        cJSON *payload = NULL, *env = NULL, *sigs, *sig;
        char *body = NULL, *text = NULL, *b64_body = NULL, *b64_sig = NULL, keyid[65], issued[32], tmp[PATH_MAX];
        uint8_t *msg = NULL, sigbuf[ED25519_SIG_BYTES];
        size_t msg_len = 0, sig_len = sizeof(sigbuf);
        EVP_MD_CTX *ctx = NULL;
        int r = -ENOMEM;

        if (!k)
                return -EINVAL;
        if (key_id(k, keyid) < 0) {
                r = errf(err, errsz, -EINVAL, "%s: cannot encode its public key", key_path);
                goto out;
        }
        payload = cJSON_CreateObject();
        if (!payload || !cJSON_AddNumberToObject(payload, "version", 1) ||
            !cJSON_AddStringToObject(payload, "tool", "modelgate") ||
            !cJSON_AddStringToObject(payload, "tool_version", PACKAGE_VERSION) ||
            !cJSON_AddStringToObject(payload, "policy_sha256", w->policy_sha256) ||
            !cJSON_AddStringToObject(payload, "issued", issued_now(issued)) ||
            !cJSON_AddItemReferenceToObject(payload, "files", w->files) ||
            !(body = cJSON_PrintUnformatted(payload)) ||
            !(msg = pae(ATTEST_PAYLOAD_TYPE, (const uint8_t *) body, strlen(body), &msg_len)) ||
            !(ctx = EVP_MD_CTX_new())) {
                errf(err, errsz, r, "out of memory");
                goto out;
        }
        if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) != 1 ||
            EVP_DigestSign(ctx, sigbuf, &sig_len, msg, msg_len) != 1) {
                r = errf(err, errsz, -EINVAL, "%s: signing failed", key_path);
                goto out;
        }
        if (!(b64_body = base64_encode((const uint8_t *) body, strlen(body))) ||
            !(b64_sig = base64_encode(sigbuf, sig_len)) || !(env = cJSON_CreateObject()) ||
            !cJSON_AddStringToObject(env, "payloadType", ATTEST_PAYLOAD_TYPE) ||
            !cJSON_AddStringToObject(env, "payload", b64_body) || !(sigs = cJSON_AddArrayToObject(env, "signatures")) ||
            !(sig = cJSON_CreateObject()) || !cJSON_AddItemToArray(sigs, sig) ||
            !cJSON_AddStringToObject(sig, "keyid", keyid) || !cJSON_AddStringToObject(sig, "sig", b64_sig) ||
            !(text = cJSON_Print(env))) {
                errf(err, errsz, r, "out of memory");
                goto out;
        }
        if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int) getpid()) >= sizeof(tmp)) {
                r = errf(err, errsz, -ENAMETOOLONG, "%s: name too long", out);
                goto out;
        }
        FILE *f = fopen(tmp, "wxe");
        if (!f) {
                r = errf(err, errsz, -errno, "%s: %s", tmp, strerror(errno));
                goto out;
        }
        bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 && fsync(fileno(f)) == 0;
        ok &= fclose(f) == 0;
        if (!ok || rename(tmp, out) < 0) {
                r = errf(err, errsz, -(errno ? errno : EIO), "%s: %s", out, strerror(errno ? errno : EIO));
                unlink(tmp);
                goto out;
        }
        r = 0;
out:
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(k);
        cJSON_Delete(payload);   /* "files" is a reference: the writer keeps it */
        cJSON_Delete(env);
        cJSON_free(body);
        cJSON_free(text);
        free(msg);
        free(b64_body);
        free(b64_sig);
        return r;
}

/* ---- verifying ------------------------------------------------------------------ */

struct attest_keyring {
        EVP_PKEY *keys[ATTEST_KEYS_MAX];
        char ids[ATTEST_KEYS_MAX][65];
        size_t n;
};

int attest_keyring_new(struct attest_keyring **ret) {
        *ret = calloc(1, sizeof(**ret));
        return *ret ? 0 : -ENOMEM;
}

void attest_keyring_free(struct attest_keyring *k) {
        if (!k)
                return;
        for (size_t i = 0; i < k->n; i++)
                EVP_PKEY_free(k->keys[i]);
        free(k);
}

size_t attest_keyring_count(const struct attest_keyring *k) {
        return k->n;
}

int attest_keyring_add(struct attest_keyring *k, const char *path, char *err, size_t errsz) {
        char *text = NULL;
        size_t len;
        int r = read_small_file(path, &text, &len, 64 * 1024);
        if (r < 0)
                return errf(err, errsz, r, "%s: %s", path, strerror(-r));
        if (k->n == ATTEST_KEYS_MAX) {
                free(text);
                return errf(err, errsz, -E2BIG, "%s: more than %d keys", path, ATTEST_KEYS_MAX);
        }
        BIO *b = BIO_new_mem_buf(text, (int) len);
        EVP_PKEY *pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        free(text);
        if (!pk)
                return errf(err, errsz, -EINVAL, "%s: not a PEM public key (openssl pkey -pubout)", path);
        if (EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
                EVP_PKEY_free(pk);
                return errf(err, errsz, -EINVAL, "%s: not an Ed25519 public key", path);
        }
        if (key_id(pk, k->ids[k->n]) < 0) {
                EVP_PKEY_free(pk);
                return errf(err, errsz, -EINVAL, "%s: cannot encode the key", path);
        }
        k->keys[k->n++] = pk;
        return 0;
}

static bool signature_ok(EVP_PKEY *k, const uint8_t *sig, size_t sig_len, const uint8_t *msg, size_t msg_len) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok = ctx && sig_len == ED25519_SIG_BYTES && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
                  EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1;
        EVP_MD_CTX_free(ctx);
        return ok;
}

/* The payload, once its signature is good: every field checked before any fact
 * is handed out. */
static int payload_facts(const cJSON *p, char ret_policy[65], int (*fn)(void *, const struct attest_fact *), void *ud,
                         char *err, size_t errsz) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "version");
        const cJSON *tool = cJSON_GetObjectItemCaseSensitive(p, "tool");
        const cJSON *pol = cJSON_GetObjectItemCaseSensitive(p, "policy_sha256");
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(p, "files"), *f;
        size_t i = 0;

        if (!cJSON_IsObject(p) || !cJSON_IsNumber(v) || v->valuedouble != 1)
                return errf(err, errsz, -EINVAL, "payload: version is not 1");
        if (!cJSON_IsString(tool) || strcmp(tool->valuestring, "modelgate") != 0)
                return errf(err, errsz, -EINVAL, "payload: tool is not \"modelgate\"");
        if (!cJSON_IsString(pol) || !is_hex64(pol->valuestring))
                return errf(err, errsz, -EINVAL, "payload: policy_sha256 is not 64 lowercase hex digits");
        if (!cJSON_IsArray(files))
                return errf(err, errsz, -EINVAL, "payload: files is not a list");
        /* Two passes: check every entry, then report them; never half a statement. */
        for (int pass = 0; pass < 2; pass++) {
                i = 0;
                cJSON_ArrayForEach(f, files) {
                        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(f, "sha256");
                        const cJSON *size = cJSON_GetObjectItemCaseSensitive(f, "size");
                        const cJSON *verdict = cJSON_GetObjectItemCaseSensitive(f, "verdict");
                        const cJSON *rules = cJSON_GetObjectItemCaseSensitive(f, "rules"), *rule;
                        struct attest_fact fact = { .rule = -1 };
                        size_t n_rules = 0;
                        if (!cJSON_IsString(sha) || !is_hex64(sha->valuestring) || !cJSON_IsNumber(size) ||
                            size->valuedouble < 0 || size->valuedouble > 9007199254740992.0 ||
                            size->valuedouble != (double) (uint64_t) size->valuedouble || !cJSON_IsString(verdict) ||
                            (strcmp(verdict->valuestring, "allow") != 0 && strcmp(verdict->valuestring, "deny") != 0) ||
                            (rules && !cJSON_IsArray(rules)))
                                return errf(err, errsz, -EINVAL, "payload: files[%zu] is malformed", i);
                        cJSON_ArrayForEach(rule, rules) {
                                if (!cJSON_IsString(rule) || ++n_rules > ATTEST_RULES_MAX)
                                        return errf(err, errsz, -EINVAL, "payload: files[%zu]: bad rules", i);
                                if (fact.rule < 0)
                                        fact.rule = rule_from_name(rule->valuestring);
                        }
                        if (pass == 1) {
                                hex_to_bytes(sha->valuestring, fact.sha256);
                                fact.size = (uint64_t) size->valuedouble;
                                fact.deny = strcmp(verdict->valuestring, "deny") == 0;
                                int r = fn ? fn(ud, &fact) : 0;
                                if (r < 0)
                                        return errf(err, errsz, r, "%s", strerror(-r));
                        }
                        i++;
                }
        }
        snprintf(ret_policy, 65, "%s", pol->valuestring);
        return 0;
}

int attest_verify(const struct attest_keyring *k, const char *text, size_t len, char ret_policy[65],
                  int (*fn)(void *ud, const struct attest_fact *f), void *ud, char *err, size_t errsz) {
        cJSON *env = cJSON_ParseWithLength(text, len), *payload = NULL;
        const cJSON *type, *body, *sigs, *s;
        uint8_t *raw = NULL, *msg = NULL;
        size_t raw_len = 0, msg_len = 0;
        bool signed_ok = false;
        int r;

        if (!cJSON_IsObject(env)) {
                r = errf(err, errsz, -EINVAL, "not a JSON object");
                goto out;
        }
        type = cJSON_GetObjectItemCaseSensitive(env, "payloadType");
        body = cJSON_GetObjectItemCaseSensitive(env, "payload");
        sigs = cJSON_GetObjectItemCaseSensitive(env, "signatures");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, ATTEST_PAYLOAD_TYPE) != 0) {
                r = errf(err, errsz, -EINVAL, "payloadType is not %s", ATTEST_PAYLOAD_TYPE);
                goto out;
        }
        if (!cJSON_IsString(body) || base64_decode(body->valuestring, &raw, &raw_len) < 0) {
                r = errf(err, errsz, -EINVAL, "payload is not base64");
                goto out;
        }
        if (!cJSON_IsArray(sigs) || !(msg = pae(ATTEST_PAYLOAD_TYPE, raw, raw_len, &msg_len))) {
                r = errf(err, errsz, -EINVAL, "no signatures");
                goto out;
        }
        cJSON_ArrayForEach(s, sigs) {
                const cJSON *id = cJSON_GetObjectItemCaseSensitive(s, "keyid");
                const cJSON *sig = cJSON_GetObjectItemCaseSensitive(s, "sig");
                uint8_t *sig_raw = NULL;
                size_t sig_len = 0;
                if (!cJSON_IsString(id) || !cJSON_IsString(sig) || base64_decode(sig->valuestring, &sig_raw, &sig_len) < 0)
                        continue;
                for (size_t i = 0; i < k->n && !signed_ok; i++)
                        if (strcmp(id->valuestring, k->ids[i]) == 0)
                                signed_ok = signature_ok(k->keys[i], sig_raw, sig_len, msg, msg_len);
                free(sig_raw);
                if (signed_ok)
                        break;
        }
        if (!signed_ok) {
                r = errf(err, errsz, -EPERM, "no valid signature by a configured key");
                goto out;
        }
        payload = cJSON_ParseWithLength((const char *) raw, raw_len);
        r = payload_facts(payload, ret_policy, fn, ud, err, errsz);
out:
        cJSON_Delete(env);
        cJSON_Delete(payload);
        free(raw);
        free(msg);
        return r;
}

/* ---- the agent's set ------------------------------------------------------------ */

struct attest_set {
        struct attest_fact *facts;      /* sorted by sha256 once loaded */
        size_t n, cap;
};

static int set_add(void *ud, const struct attest_fact *f) {
        struct attest_set *s = ud;
        if (s->n >= ATTEST_ENTRIES_MAX)
                return -E2BIG;
        if (s->n == s->cap) {
                size_t nc = s->cap ? s->cap * 2 : 256;
                struct attest_fact *nf = realloc(s->facts, nc * sizeof(*nf));
                if (!nf)
                        return -ENOMEM;
                s->facts = nf;
                s->cap = nc;
        }
        s->facts[s->n++] = *f;
        return 0;
}

static int fact_cmp(const void *a, const void *b) {
        return memcmp(((const struct attest_fact *) a)->sha256, ((const struct attest_fact *) b)->sha256, 32);
}

static void warnf(void (*warn)(void *, const char *), void *ud, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warnf(void (*warn)(void *, const char *), void *ud, const char *fmt, ...) {
        char line[ATTEST_ERROR_MAX + PATH_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (warn)
                warn(ud, line);
}

static void load_envelope(struct attest_set *s, const struct attest_keyring *k, const char *path, const char *policy,
                          void (*warn)(void *, const char *), void *ud) {
        char *text = NULL, err[ATTEST_ERROR_MAX], stmt_policy[65];
        size_t len;
        struct attest_set tmp = { 0 };
        int r = read_small_file(path, &text, &len, ATTEST_FILE_MAX);
        if (r < 0) {
                warnf(warn, ud, "attestation %s: %s; skipped", path, strerror(-r));
                return;
        }
        /* Into a scratch set first: a statement for another policy adds nothing. */
        r = attest_verify(k, text, len, stmt_policy, set_add, &tmp, err, sizeof(err));
        free(text);
        if (r < 0)
                warnf(warn, ud, "attestation %s: %s; skipped", path, err);
        else if (strcmp(stmt_policy, policy) != 0)
                warnf(warn, ud, "attestation %s: made under policy sha256 %.12s…, not the current %.12s…; not used", path,
                      stmt_policy, policy);
        else
                for (size_t i = 0; i < tmp.n && set_add(s, &tmp.facts[i]) == 0; i++)
                        ;
        free(tmp.facts);
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void load_path(struct attest_set *s, const struct attest_keyring *k, const char *path, const char *policy,
                      void (*warn)(void *, const char *), void *ud) {
        struct stat st;
        if (stat(path, &st) < 0) {
                warnf(warn, ud, "attestation %s: %s; skipped", path, strerror(errno));
                return;
        }
        if (!S_ISDIR(st.st_mode)) {
                load_envelope(s, k, path, policy, warn, ud);
                return;
        }
        DIR *d = opendir(path);
        if (!d) {
                warnf(warn, ud, "attestation directory %s: %s; skipped", path, strerror(errno));
                return;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
                size_t l = strlen(e->d_name);
                if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
                        continue;
                if (n == cap) {
                        size_t nc = cap ? cap * 2 : 16;
                        char **nn = realloc(names, nc * sizeof(*nn));
                        if (!nn)
                                break;
                        names = nn;
                        cap = nc;
                }
                if (!(names[n] = strdup(e->d_name)))
                        break;
                n++;
        }
        closedir(d);
        if (n > 1)
                qsort(names, n, sizeof(*names), name_cmp);
        for (size_t i = 0; i < n; i++) {
                char full[PATH_MAX];
                if ((size_t) snprintf(full, sizeof(full), "%s/%s", path, names[i]) < sizeof(full))
                        load_envelope(s, k, full, policy, warn, ud);
                free(names[i]);
        }
        free(names);
}

/* A key decides which verdicts are trusted without a scan, so only its owner may
 * change it: the file and every directory above it (after links) must belong to
 * root or to us and be writable by no one else, as sshd's StrictModes wants. A
 * sticky world-writable directory (/tmp) is allowed above: others cannot rename
 * or remove what they do not own there. The statements need no such care: each
 * is signed. */
static int key_path_trusted(const char *path, char **ret_real, char *err, size_t errsz) {
        char *real = realpath(path, NULL);
        uid_t me = geteuid();
        int r = 0;

        *ret_real = NULL;
        if (!real)
                return errf(err, errsz, -errno, "%s: %s", path, strerror(errno));
        char *checked = strdup(real);   /* the loop cuts real down to each parent */
        if (!checked) {
                free(real);
                return errf(err, errsz, -ENOMEM, "%s: out of memory", path);
        }
        for (char *end = real + strlen(real);;) {
                struct stat st;
                bool file = end == real + strlen(real);
                *end = '\0';
                const char *what = real[0] ? real : "/";
                if (lstat(what, &st) < 0) {
                        r = errf(err, errsz, -errno, "%s: %s: %s", path, what, strerror(errno));
                        break;
                }
                if (S_ISLNK(st.st_mode)) {   /* realpath left none: it changed meanwhile */
                        r = errf(err, errsz, -EAGAIN, "%s: %s changed while it was checked", path, what);
                        break;
                }
                if (st.st_uid != 0 && st.st_uid != me) {
                        r = errf(err, errsz, -EPERM, "%s: %s belongs to uid %u, not to root", path, what,
                                 (unsigned) st.st_uid);
                        break;
                }
                if ((st.st_mode & (S_IWGRP | S_IWOTH)) && (file || !(st.st_mode & S_ISVTX))) {
                        r = errf(err, errsz, -EPERM, "%s: %s is writable by %s (chmod go-w)", path, what,
                                 (st.st_mode & S_IWOTH) ? "others" : "its group");
                        break;
                }
                if (!real[0])
                        break;
                end = strrchr(real, '/');   /* realpath: absolute, so one is always found */
        }
        free(real);
        /* The key is then read by the path just checked, not the one configured:
         * links on the configured path may lie in directories others can write
         * and point elsewhere by the time of the read; the checked path has no
         * link left, and no one else can change any part of it. */
        if (r == 0)
                *ret_real = checked;
        else
                free(checked);
        return r;
}

int attest_set_load(const struct policy *p, struct attest_set **ret, void (*warn)(void *ud, const char *line),
                    void *ud) {
        struct attest_keyring *k = NULL;
        struct attest_set *s = calloc(1, sizeof(*s));
        char err[ATTEST_ERROR_MAX];

        if (!s || attest_keyring_new(&k) < 0) {
                free(s);
                return -ENOMEM;
        }
        for (size_t i = 0; i < policy_attestation_key_count(p); i++) {
                char *real = NULL;
                if (key_path_trusted(policy_attestation_key(p, i), &real, err, sizeof(err)) < 0 ||
                    attest_keyring_add(k, real, err, sizeof(err)) < 0)
                        warnf(warn, ud, "attestation key %s; skipped", err);
                free(real);
        }
        if (attest_keyring_count(k) == 0 && policy_attestation_count(p) > 0)
                warnf(warn, ud, "attestations are configured but no attestation key could be loaded: none is trusted");
        else
                for (size_t i = 0; i < policy_attestation_count(p); i++)
                        load_path(s, k, policy_attestation(p, i), policy_sha256(p), warn, ud);
        attest_keyring_free(k);
        if (s->n > 1)
                qsort(s->facts, s->n, sizeof(*s->facts), fact_cmp);
        /* Statements that disagree on one content: deny wins, fail closed. */
        for (int pass = 0; pass < 2; pass++)   /* forward, then back: a whole run of equals */
                for (size_t j = 1; j < s->n; j++) {
                        size_t i = pass == 0 ? j : s->n - j;
                        struct attest_fact *a = &s->facts[i - 1], *b = &s->facts[i];
                        if (memcmp(a->sha256, b->sha256, 32) == 0 && (a->deny || b->deny || a->size != b->size))
                                a->deny = b->deny = true;
                }
        *ret = s;
        return 0;
}

void attest_set_free(struct attest_set *s) {
        if (s) {
                free(s->facts);
                free(s);
        }
}

size_t attest_set_count(const struct attest_set *s) {
        return s ? s->n : 0;
}

bool attest_set_lookup(const struct attest_set *s, const uint8_t sha256[32], struct attest_fact *ret) {
        struct attest_fact key;
        if (!s || s->n == 0)
                return false;
        memcpy(key.sha256, sha256, 32);
        const struct attest_fact *f = bsearch(&key, s->facts, s->n, sizeof(*s->facts), fact_cmp);
        /* Any duplicate of f carries the same (merged) verdict. */
        if (!f)
                return false;
        *ret = *f;
        return true;
}
