/* test-attestation.c — signed verdicts: what `modelgate scan --attest` writes
 * verifies; a flipped byte anywhere in the payload or signature, another key, a
 * wrong keyid or type, bad base64 or a malformed statement never yields a fact;
 * the agent's set keeps only verified statements for its policy hash, and reports
 * each one it skips by file name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "attestation.h"
#include "tap.h"

static char dir[400];
static const char *SHA_A = "1111111111111111111111111111111111111111111111111111111111111111";
static const char *SHA_B = "2222222222222222222222222222222222222222222222222222222222222222";
static const char *POLICY = "abababababababababababababababababababababababababababababababab";

static char *path_in(const char *name) {
        static char p[4][512];
        static int i;
        i = (i + 1) % 4;
        snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
        return p[i];
}

/* A new Ed25519 key pair as NAME.pem (private) and NAME.pub. */
static EVP_PKEY *make_key(const char *name) {
        char priv[600], pub[600];
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        TAP_CHECK(k);
        snprintf(priv, sizeof(priv), "%s.pem", path_in(name));
        snprintf(pub, sizeof(pub), "%s.pub", path_in(name));
        FILE *f = fopen(priv, "w");
        TAP_CHECK(f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1);
        fclose(f);
        f = fopen(pub, "w");
        TAP_CHECK(f && PEM_write_PUBKEY(f, k) == 1);
        fclose(f);
        return k;
}

static char *slurp(const char *path, size_t *len) {
        FILE *f = fopen(path, "r");
        TAP_CHECK(f);
        char *buf = malloc(1 << 20);
        *len = fread(buf, 1, (1 << 20) - 1, f);
        buf[*len] = '\0';
        fclose(f);
        return buf;
}

static void spit(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        TAP_CHECK(f && fputs(text, f) >= 0);
        fclose(f);
}

/* The real writer: two files, one denied. */
static char *write_envelope(const char *key_name, const char *policy, const char *out, size_t *len) {
        struct attest_writer *w = NULL;
        const char *rules[] = { "UNSAFE_IMPORT", "PICKLE_OBFUSCATION" };
        char key[600], err[ATTEST_ERROR_MAX];
        snprintf(key, sizeof(key), "%s.pem", path_in(key_name));
        TAP_CHECK(attest_writer_new(policy, &w) == 0);
        TAP_CHECK(attest_writer_add(w, SHA_A, 25, false, NULL, 0) == 0);
        TAP_CHECK(attest_writer_add(w, SHA_B, 1234, true, rules, 2) == 0);
        if (attest_writer_finish(w, key, path_in(out), err, sizeof(err)) < 0) {
                fprintf(stderr, "# %s\n", err);
                TAP_CHECK(0);
        }
        attest_writer_free(w);
        return slurp(path_in(out), len);
}

static struct attest_keyring *ring_of(const char *name) {
        struct attest_keyring *k = NULL;
        char pub[600], err[ATTEST_ERROR_MAX];
        snprintf(pub, sizeof(pub), "%s.pub", path_in(name));
        TAP_CHECK(attest_keyring_new(&k) == 0);
        TAP_CHECK(attest_keyring_add(k, pub, err, sizeof(err)) == 0);
        return k;
}

struct seen {
        int n, denied;
        struct attest_fact last;
};

static int count_fact(void *ud, const struct attest_fact *f) {
        struct seen *s = ud;
        s->n++;
        s->denied += f->deny;
        s->last = *f;
        return 0;
}

static int verify(const struct attest_keyring *k, const char *text, size_t len, struct seen *s) {
        char pol[65], err[ATTEST_ERROR_MAX];
        memset(s, 0, sizeof(*s));
        int r = attest_verify(k, text, len, pol, count_fact, s, err, sizeof(err));
        if (r == 0)
                TAP_CHECK_STR(pol, POLICY);
        else
                TAP_CHECK(s->n == 0);   /* nothing handed out unless all checks pass */
        return r;
}

/* Replaces the envelope's payload (base64 of `payload`) and signature fields. */
static char *rebuild(const char *text, const unsigned char *payload, size_t plen, const char *sig_b64) {
        cJSON *env = cJSON_Parse(text);
        char *b64 = malloc(plen * 2 + 8);
        EVP_EncodeBlock((unsigned char *) b64, payload, (int) plen);
        cJSON_ReplaceItemInObject(env, "payload", cJSON_CreateString(b64));
        if (sig_b64) {
                cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(env, "signatures"), 0);
                cJSON_ReplaceItemInObject(s, "sig", cJSON_CreateString(sig_b64));
        }
        char *out = cJSON_PrintUnformatted(env);
        cJSON_Delete(env);
        free(b64);
        return out;
}

static unsigned char *payload_of(const char *text, size_t *len) {
        cJSON *env = cJSON_Parse(text);
        const char *b64 = cJSON_GetObjectItem(env, "payload")->valuestring;
        unsigned char *out = malloc(strlen(b64));
        int n = EVP_DecodeBlock(out, (const unsigned char *) b64, (int) strlen(b64));
        size_t pad = b64[strlen(b64) - 1] == '=' ? (b64[strlen(b64) - 2] == '=' ? 2 : 1) : 0;
        *len = (size_t) n - pad;
        cJSON_Delete(env);
        return out;
}

/* Signs `payload` as DSSE does with key NAME, base64. */
static char *sign_b64(EVP_PKEY *k, const char *payload) {
        char *pae = NULL;
        unsigned char sig[64];
        size_t sl = sizeof(sig);
        TAP_CHECK(asprintf(&pae, "DSSEv1 %zu %s %zu %s", strlen(ATTEST_PAYLOAD_TYPE), ATTEST_PAYLOAD_TYPE,
                           strlen(payload), payload) > 0);
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        TAP_CHECK(EVP_DigestSignInit(c, NULL, NULL, NULL, k) == 1 &&
                  EVP_DigestSign(c, sig, &sl, (unsigned char *) pae, strlen(pae)) == 1);
        EVP_MD_CTX_free(c);
        free(pae);
        char *b64 = malloc(100);
        EVP_EncodeBlock((unsigned char *) b64, sig, (int) sl);
        return b64;
}

static void test_written_envelope_verifies_and_yields_its_facts(void) {
        size_t len;
        make_key("ci");
        char *text = write_envelope("ci", POLICY, "env.json", &len);
        struct attest_keyring *k = ring_of("ci");
        struct seen s;
        TAP_CHECK(verify(k, text, len, &s) == 0);
        TAP_CHECK(s.n == 2 && s.denied == 1);
        TAP_CHECK(s.last.deny && s.last.size == 1234 && s.last.rule == RULE_UNSAFE_IMPORT && s.last.sha256[0] == 0x22);
        struct stat st;
        TAP_CHECK(stat(path_in("env.json"), &st) == 0);
        attest_keyring_free(k);
}

static void test_any_flipped_payload_byte_is_refused(void) {
        size_t len, plen;
        make_key("ci");
        char *text = write_envelope("ci", POLICY, "env.json", &len);
        struct attest_keyring *k = ring_of("ci");
        unsigned char *p = payload_of(text, &plen);
        struct seen s;
        for (size_t i = 0; i < plen; i++) {
                p[i] ^= 0x01;
                char *t = rebuild(text, p, plen, NULL);
                TAP_CHECK(verify(k, t, strlen(t), &s) == -EPERM);
                free(t);
                p[i] ^= 0x01;
        }
        char *t = rebuild(text, p, plen, NULL);   /* and unflipped, rebuilt the same way: good */
        TAP_CHECK(verify(k, t, strlen(t), &s) == 0);
        attest_keyring_free(k);
}

static void test_flipped_signature_other_key_or_keyid_is_refused(void) {
        size_t len;
        make_key("ci");
        make_key("other");
        char *text = write_envelope("ci", POLICY, "env.json", &len);
        struct attest_keyring *k = ring_of("ci"), *other = ring_of("other");
        struct seen s;
        TAP_CHECK(verify(other, text, len, &s) == -EPERM);
        cJSON *env = cJSON_Parse(text);
        cJSON *sig = cJSON_GetArrayItem(cJSON_GetObjectItem(env, "signatures"), 0);
        char *orig = strdup(cJSON_GetObjectItem(sig, "sig")->valuestring);
        for (size_t i = 0; i < 85; i++) {   /* 64 bytes: the first 85 base64 digits carry them */
                char *b = strdup(orig);
                b[i] = b[i] == 'A' ? 'B' : 'A';
                cJSON_ReplaceItemInObject(sig, "sig", cJSON_CreateString(b));
                char *t = cJSON_PrintUnformatted(env);
                TAP_CHECK(verify(k, t, strlen(t), &s) < 0);
                free(t);
                free(b);
        }
        cJSON_ReplaceItemInObject(sig, "sig", cJSON_CreateString(orig));
        cJSON_ReplaceItemInObject(sig, "keyid", cJSON_CreateString(SHA_A));
        char *t = cJSON_PrintUnformatted(env);
        TAP_CHECK(verify(k, t, strlen(t), &s) == -EPERM);
        free(t);
        cJSON_Delete(env);
        attest_keyring_free(k);
        attest_keyring_free(other);
}

static void test_wrong_type_or_bad_base64_is_refused(void) {
        size_t len;
        make_key("ci");
        char *text = write_envelope("ci", POLICY, "env.json", &len);
        struct attest_keyring *k = ring_of("ci");
        struct seen s;
        cJSON *env = cJSON_Parse(text);
        cJSON_ReplaceItemInObject(env, "payloadType", cJSON_CreateString("application/vnd.in-toto+json"));
        char *t = cJSON_PrintUnformatted(env);
        TAP_CHECK(verify(k, t, strlen(t), &s) == -EINVAL);
        free(t);
        cJSON_Delete(env);
        const char *bad[] = { "", "not base64!", "QUJD\n", "QUJ=RA==", "QUJDRA=", "Q===" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                env = cJSON_Parse(text);
                cJSON_ReplaceItemInObject(env, "payload", cJSON_CreateString(bad[i]));
                t = cJSON_PrintUnformatted(env);
                TAP_CHECK(verify(k, t, strlen(t), &s) < 0);
                free(t);
                cJSON_Delete(env);
        }
        TAP_CHECK(verify(k, "[]", 2, &s) == -EINVAL);
        TAP_CHECK(verify(k, "{\"payloadType\":", 15, &s) == -EINVAL);
        attest_keyring_free(k);
}

static void test_signed_but_malformed_statement_yields_nothing(void) {
        size_t len;
        EVP_PKEY *key = make_key("ci");
        char *text = write_envelope("ci", POLICY, "env.json", &len);
        struct attest_keyring *k = ring_of("ci");
        struct seen s;
        char good[256];
        snprintf(good, sizeof(good), "{\"sha256\":\"%s\",\"size\":1,\"verdict\":\"allow\",\"rules\":[]}", SHA_A);
        const char *bad_files[] = {
                "{\"sha256\":\"AB\",\"size\":1,\"verdict\":\"allow\"}",
                "{\"sha256\":\"1111111111111111111111111111111111111111111111111111111111111111\",\"size\":-1,\"verdict\":\"allow\"}",
                "{\"sha256\":\"1111111111111111111111111111111111111111111111111111111111111111\",\"size\":1.5,\"verdict\":\"allow\"}",
                "{\"sha256\":\"1111111111111111111111111111111111111111111111111111111111111111\",\"size\":1,\"verdict\":\"maybe\"}",
                "{\"sha256\":\"1111111111111111111111111111111111111111111111111111111111111111\",\"size\":1,\"verdict\":\"allow\",\"rules\":[1]}",
                "{\"sha256\":\"1111111111111111111111111111111111111111111111111111111111111111\",\"verdict\":\"allow\"}",
        };
        for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
                char *payload = NULL;
                /* one good entry first: a statement is refused whole */
                TAP_CHECK(asprintf(&payload, "{\"version\":1,\"tool\":\"modelgate\",\"policy_sha256\":\"%s\",\"files\":[%s,%s]}",
                                   POLICY, good, bad_files[i]) > 0);
                char *sig = sign_b64(key, payload);
                char *t = rebuild(text, (unsigned char *) payload, strlen(payload), sig);
                TAP_CHECK(verify(k, t, strlen(t), &s) == -EINVAL);
                free(t);
                free(sig);
                free(payload);
        }
        /* version, tool, policy_sha256, files: one wrong at a time */
        const char *bad_docs[][4] = { { "2", "modelgate", POLICY, "[]" },
                                      { "1", "other", POLICY, "[]" },
                                      { "1", "modelgate", "abab", "[]" },
                                      { "1", "modelgate", POLICY, "{}" } };
        for (size_t i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
                char *payload = NULL;
                TAP_CHECK(asprintf(&payload, "{\"version\":%s,\"tool\":\"%s\",\"policy_sha256\":\"%s\",\"files\":%s}",
                                   bad_docs[i][0], bad_docs[i][1], bad_docs[i][2], bad_docs[i][3]) > 0);
                char *sig = sign_b64(key, payload);
                char *t = rebuild(text, (unsigned char *) payload, strlen(payload), sig);
                TAP_CHECK(verify(k, t, strlen(t), &s) == -EINVAL);
                free(t);
                free(sig);
                free(payload);
        }
        attest_keyring_free(k);
}

static void test_a_private_or_non_ed25519_key_is_not_a_trusted_key(void) {
        struct attest_keyring *k = NULL;
        char err[ATTEST_ERROR_MAX], pem[600];
        make_key("ci");
        TAP_CHECK(attest_keyring_new(&k) == 0);
        snprintf(pem, sizeof(pem), "%s.pem", path_in("ci"));
        TAP_CHECK(attest_keyring_add(k, pem, err, sizeof(err)) == -EINVAL);   /* a private key file */
        EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        FILE *f = fopen(path_in("ec.pub"), "w");
        TAP_CHECK(rsa && f && PEM_write_PUBKEY(f, rsa) == 1);
        fclose(f);
        TAP_CHECK(attest_keyring_add(k, path_in("ec.pub"), err, sizeof(err)) == -EINVAL);
        TAP_CHECK(strstr(err, "ec.pub") && strstr(err, "Ed25519"));
        TAP_CHECK(attest_keyring_count(k) == 0);
        attest_keyring_free(k);
}

struct warned {
        char text[8192];
        int n;
};

static void note(void *ud, const char *line) {
        struct warned *w = ud;
        w->n++;
        strncat(w->text, line, sizeof(w->text) - strlen(w->text) - 2);
        strcat(w->text, "\n");
}

static void test_set_keeps_verified_statements_for_its_policy_only(void) {
        size_t len;
        char pol_json[2048], err[POLICY_ERROR_MAX];
        struct policy *p = NULL, *plain = NULL;
        make_key("ci");
        make_key("other");
        mkdir(path_in("att"), 0700);
        /* The policy the agent runs: its hash is what statements must name. */
        snprintf(pol_json, sizeof(pol_json), "{\"attestation_keys\":[\"%s/ci.pub\",\"%s/missing.pub\"],\"attestations\":[\"%s/att\"]}",
                 dir, dir, dir);
        spit(path_in("policy.json"), pol_json);
        TAP_CHECK(policy_load(path_in("policy.json"), &p, err, sizeof(err)) == 0);
        TAP_CHECK(policy_load(NULL, &plain, err, sizeof(err)) == 0);
        free(write_envelope("ci", policy_sha256(p), "att/good.json", &len));
        free(write_envelope("ci", POLICY, "att/other-policy.json", &len));
        free(write_envelope("other", policy_sha256(p), "att/other-key.json", &len));
        spit(path_in("att/broken.json"), "{\"payloadType\":");
        spit(path_in("att/ignored.txt"), "not read: not *.json");
        struct attest_set *s = NULL;
        struct warned w = { 0 };
        TAP_CHECK(attest_set_load(p, &s, note, &w) == 0);
        fprintf(stderr, "%s", w.text);
        TAP_CHECK(attest_set_count(s) == 2);
        struct attest_fact f;
        uint8_t a[32], b[32], c[32];
        memset(a, 0x11, 32);
        memset(b, 0x22, 32);
        memset(c, 0x33, 32);
        TAP_CHECK(attest_set_lookup(s, a, &f) && !f.deny && f.size == 25);
        TAP_CHECK(attest_set_lookup(s, b, &f) && f.deny);
        TAP_CHECK(!attest_set_lookup(s, c, &f));
        TAP_CHECK(w.n == 4);
        TAP_CHECK(strstr(w.text, "missing.pub") && strstr(w.text, "other-policy.json") &&
                  strstr(w.text, "other-key.json") && strstr(w.text, "broken.json") && !strstr(w.text, "good.json") &&
                  !strstr(w.text, "ignored.txt"));
        TAP_CHECK_STR(policy_sha256(p), policy_sha256(plain));
        attest_set_free(s);
        policy_free(p);
        policy_free(plain);
}

static void test_disagreeing_statements_deny(void) {
        struct attest_writer *w = NULL;
        char key[600], err[ATTEST_ERROR_MAX], pol_json[1024];
        struct policy *p = NULL;
        make_key("ci");
        mkdir(path_in("att2"), 0700);
        snprintf(pol_json, sizeof(pol_json), "{\"attestation_keys\":[\"%s/ci.pub\"],\"attestations\":[\"%s/att2\"]}", dir, dir);
        spit(path_in("policy2.json"), pol_json);
        TAP_CHECK(policy_load(path_in("policy2.json"), &p, err, sizeof(err)) == 0);
        snprintf(key, sizeof(key), "%s.pem", path_in("ci"));
        for (int i = 0; i < 3; i++) {
                char name[32];
                snprintf(name, sizeof(name), "att2/%d.json", i);
                TAP_CHECK(attest_writer_new(policy_sha256(p), &w) == 0);
                TAP_CHECK(attest_writer_add(w, SHA_A, 25, i == 1, NULL, 0) == 0);
                TAP_CHECK(attest_writer_finish(w, key, path_in(name), err, sizeof(err)) == 0);
                attest_writer_free(w);
        }
        struct attest_set *s = NULL;
        TAP_CHECK(attest_set_load(p, &s, NULL, NULL) == 0 && attest_set_count(s) == 3);
        struct attest_fact f;
        uint8_t a[32];
        memset(a, 0x11, 32);
        TAP_CHECK(attest_set_lookup(s, a, &f) && f.deny);
        attest_set_free(s);
        policy_free(p);
}

int main(void) {
        static const struct tap_case cases[] = {
                { "a written envelope verifies and yields its facts", test_written_envelope_verifies_and_yields_its_facts },
                { "a flipped bit at any payload byte is refused", test_any_flipped_payload_byte_is_refused },
                { "a changed signature, another key or another keyid is refused",
                  test_flipped_signature_other_key_or_keyid_is_refused },
                { "a wrong payloadType, bad base64 or bad JSON is refused", test_wrong_type_or_bad_base64_is_refused },
                { "a signed statement with one malformed field yields nothing",
                  test_signed_but_malformed_statement_yields_nothing },
                { "only Ed25519 public keys are trusted keys", test_a_private_or_non_ed25519_key_is_not_a_trusted_key },
                { "the agent's set keeps verified statements for its policy hash, naming each one skipped",
                  test_set_keeps_verified_statements_for_its_policy_only },
                { "statements that disagree on one content deny it", test_disagreeing_statements_deny },
        };
        const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
        char cmd[300];
        snprintf(dir, sizeof(dir), "%s/mg-attest-XXXXXX", base);
        if (!mkdtemp(dir))
                return 99;
        /* Each case gets its own directory under dir. */
        int r = 0;
        printf("1..%zu\n", sizeof(cases) / sizeof(cases[0]));
        fflush(stdout);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char sub[300];
                snprintf(sub, sizeof(sub), "%.200s/%zu", dir, i);   /* fits dir[] */
                mkdir(sub, 0700);
                pid_t pid = fork();
                if (pid == 0) {
                        snprintf(dir, sizeof(dir), "%s", sub);
                        cases[i].fn();
                        fflush(NULL);
                        _exit(0);
                }
                int st = 0;
                while (waitpid(pid, &st, 0) < 0)
                        ;
                bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
                printf("%sok %zu - %s\n", ok ? "" : "not ", i + 1, cases[i].name);
                fflush(stdout);
                r |= !ok;
        }
        snprintf(cmd, sizeof(cmd), "rm -rf '%.250s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "# could not remove %s\n", dir);
        return r;
}
