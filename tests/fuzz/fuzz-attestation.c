/* fuzz-attestation.c — DSSE envelopes of signed verdicts. An even first byte: the
 * rest is an envelope, checked against a fixed key (JSON, base64, PAE, signature;
 * a random input never carries a good signature). An odd one: the rest is a
 * payload, signed here with that key and wrapped, so that the statement parser
 * behind the signature check is reached too. Whatever verifies must hand out
 * facts with a whole SHA-256 and a verdict; a refusal must leave a message. */
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attestation.h"
#include "fuzz.h"
#include "fuzz-tmpfile.h"

static struct attest_keyring *ring;
static EVP_PKEY *key;
static char keyid[65];

static void setup(void) {
        static const uint8_t seed[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        unsigned char *der = NULL, md[32];
        unsigned int md_len = 0;
        char err[ATTEST_ERROR_MAX];
        key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
        BIO *b = BIO_new(BIO_s_mem());
        char *pem;
        long n;
        int len = key ? i2d_PUBKEY(key, &der) : -1;
        if (!b || len <= 0 || PEM_write_bio_PUBKEY(b, key) != 1 || (n = BIO_get_mem_data(b, &pem)) <= 0 ||
            EVP_Digest(der, (size_t) len, md, &md_len, EVP_sha256(), NULL) != 1 || attest_keyring_new(&ring) < 0 ||
            attest_keyring_add(ring, fuzz_tmp_write("key.pub", (const uint8_t *) pem, (size_t) n), err, sizeof(err)) < 0)
                abort();
        for (int i = 0; i < 32; i++)
                snprintf(keyid + 2 * i, 3, "%02x", md[i]);
        OPENSSL_free(der);
        BIO_free(b);
}

static int check_fact(void *ud, const struct attest_fact *f) {
        (void) ud;
        if (f->rule < -1 || f->rule >= _RULE_MAX)
                abort();
        return 0;
}

/* {"payloadType":T,"payload":B64,"signatures":[{"keyid":K,"sig":S}]} */
static char *wrap_signed(const uint8_t *payload, size_t n) {
        const char *type = ATTEST_PAYLOAD_TYPE;
        char head[128];
        int h = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", strlen(type), type, n);
        uint8_t *pae = malloc((size_t) h + n + 1), sig[64];
        size_t sl = sizeof(sig);
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        char *b64 = malloc((n + 2) / 3 * 4 + 1), sig64[100], *out;
        memcpy(pae, head, (size_t) h);
        memcpy(pae + h, payload, n);
        if (!c || EVP_DigestSignInit(c, NULL, NULL, NULL, key) != 1 ||
            EVP_DigestSign(c, sig, &sl, pae, (size_t) h + n) != 1)
                abort();
        EVP_EncodeBlock((unsigned char *) b64, payload, (int) n);
        EVP_EncodeBlock((unsigned char *) sig64, sig, (int) sl);
        if (asprintf(&out, "{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}",
                     type, b64, keyid, sig64) < 0)
                abort();
        EVP_MD_CTX_free(c);
        free(pae);
        free(b64);
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char policy[65], err[ATTEST_ERROR_MAX];
        if (!ring)
                setup();
        if (size < 1 || size > 1 << 20)
                return 0;
        char *text = data[0] & 1 ? wrap_signed(data + 1, size - 1) : strndup((const char *) data + 1, size - 1);
        err[0] = '\0';
        int r = attest_verify(ring, text, strlen(text), policy, check_fact, NULL, err, sizeof(err));
        if (r == 0 && strlen(policy) != 64)
                abort();
        if (r < 0 && (!err[0] || !memchr(err, '\0', sizeof(err))))
                abort();
        free(text);
        return 0;
}
