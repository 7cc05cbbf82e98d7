/* signer_keys.c — PKCS#11, key-file and command keys of ewtp-signer (see signer_keys.h). */
#include "signer_keys.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libp11.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <ewtp/arena.h>
#include <ewtp/errors.h>
#include <ewtp/host.h>

#include "keys.h" /* daemon/host: the external command signer, shared with ewtpd */

#define SM2_ID "1234567812345678"

enum family { FAM_RSA = 1, FAM_EC_P256, FAM_SM2 };

/* One loaded PKCS#11 module; several keys may share it (and its slots' logins). */
struct module {
    struct module *next;
    char *path;
    PKCS11_CTX *ctx;
    PKCS11_SLOT *slots;
    unsigned n_slots;
    pthread_mutex_t lock; /* one token operation at a time through this module */
};

struct key {
    char *name;
    enum signer_key_source source;
    enum family family;
    EVP_PKEY *pkey;     /* PKCS#11 (libp11's methods call the token) or a key file */
    struct module *mod; /* PKCS#11 */
};

struct signer_keys {
    struct key *keys;
    size_t n;
    struct module *modules;
    struct ewtp_keys *commands; /* the command keys, by the same names */
};

static void module_free(struct module *m)
{
    if (m->slots != NULL)
        PKCS11_release_all_slots(m->ctx, m->slots, m->n_slots);
    if (m->ctx != NULL) {
        PKCS11_CTX_unload(m->ctx);
        PKCS11_CTX_free(m->ctx);
    }
    pthread_mutex_destroy(&m->lock);
    free(m->path);
    free(m);
}

void signer_keys_free(struct signer_keys *k)
{
    if (k == NULL)
        return;
    /* The EVP_PKEYs of PKCS#11 keys refer to the module's key objects: free them first. */
    for (size_t i = 0; i < k->n; i++) {
        EVP_PKEY_free(k->keys[i].pkey);
        free(k->keys[i].name);
    }
    free(k->keys);
    while (k->modules != NULL) {
        struct module *n = k->modules->next;
        module_free(k->modules);
        k->modules = n;
    }
    ewtp_keys_free(k->commands);
    free(k);
}

static void problem(const struct signer_key_conf *kc, const char *what, const char *detail)
{
    unsigned long e = ERR_peek_last_error();
    char ossl[256] = "";
    if (e != 0)
        ERR_error_string_n(e, ossl, sizeof(ossl));
    fprintf(stderr, "ewtp-signer: key %s: %s%s%s%s%s\n", kc->name, what, detail ? " " : "",
            detail ? detail : "", ossl[0] ? ": " : "", ossl);
    ERR_clear_error();
}

static int family_of(EVP_PKEY *p, enum family *f)
{
    char group[64] = "";
    size_t gl = 0;
    if (EVP_PKEY_is_a(p, "RSA") || EVP_PKEY_get_base_id(p) == EVP_PKEY_RSA)
        *f = FAM_RSA;
    else if (EVP_PKEY_is_a(p, "SM2"))
        *f = FAM_SM2;
    else if (EVP_PKEY_get_base_id(p) == EVP_PKEY_EC && EVP_PKEY_bits(p) == 256 &&
             (EVP_PKEY_get_utf8_string_param(p, "group", group, sizeof(group), &gl) != 1 ||
              strcmp(group, "SM2") != 0))
        *f = FAM_EC_P256; /* libp11's EC keys are legacy keys: no group parameter to ask */
    else if (EVP_PKEY_is_a(p, "EC") && strcmp(group, "SM2") == 0)
        *f = FAM_SM2;
    else
        return -1;
    return 0;
}

/* ---- PKCS#11 ---- */

static struct module *module_get(struct signer_keys *k, const struct signer_key_conf *kc)
{
    for (struct module *m = k->modules; m != NULL; m = m->next)
        if (strcmp(m->path, kc->module) == 0)
            return m;
    struct module *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->path = strdup(kc->module);
    m->ctx = PKCS11_CTX_new();
    if (m->path == NULL || m->ctx == NULL) {
        module_free(m);
        return NULL;
    }
    if (PKCS11_CTX_load(m->ctx, kc->module) != 0) {
        problem(kc, "cannot load the PKCS#11 module", kc->module);
        PKCS11_CTX_free(m->ctx);
        m->ctx = NULL;
        module_free(m);
        return NULL;
    }
    if (PKCS11_enumerate_slots(m->ctx, &m->slots, &m->n_slots) != 0) {
        problem(kc, "cannot list the slots of", kc->module);
        m->slots = NULL;
        module_free(m);
        return NULL;
    }
    m->next = k->modules;
    k->modules = m;
    return m;
}

static PKCS11_SLOT *slot_of(struct module *m, const struct signer_key_conf *kc)
{
    for (unsigned i = 0; i < m->n_slots; i++) {
        PKCS11_SLOT *s = &m->slots[i];
        if (s->token == NULL || !s->token->initialized)
            continue;
        if (kc->token != NULL ? strcmp(s->token->label, kc->token) == 0
                              : PKCS11_get_slotid_from_slot(s) == (unsigned long)kc->slot)
            return s;
    }
    return NULL;
}

static int hex_to_bytes(const char *hex, unsigned char *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex) / 2;
    if (n > cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    *len = n;
    return 0;
}

static int load_pkcs11(struct signer_keys *k, const struct signer_key_conf *kc, struct key *e)
{
    struct module *m = module_get(k, kc);
    if (m == NULL)
        return -1;
    PKCS11_SLOT *slot = slot_of(m, kc);
    if (slot == NULL) {
        char which[64];
        snprintf(which, sizeof(which), "%ld", kc->slot);
        problem(kc, kc->token ? "no initialised token labelled" : "no initialised token in slot",
                kc->token ? kc->token : which);
        return -1;
    }
    int logged_in = 0;
    if (PKCS11_is_logged_in(slot, 0, &logged_in) != 0)
        logged_in = 0;
    if (!logged_in) {
        char *pin = NULL;
        const char *why = NULL;
        if (signer_read_secret(kc->pin_file, &pin, &why) != 0) {
            problem(kc, "PIN file", why);
            return -1;
        }
        /* The PIN is never logged; our copy is wiped (libp11 keeps one to log in again). */
        int rc = PKCS11_login(slot, 0, pin);
        explicit_bzero(pin, strlen(pin));
        free(pin);
        if (rc != 0) {
            problem(kc, "login to the token failed (wrong PIN?)", NULL);
            return -1;
        }
    }
    PKCS11_KEY *keys = NULL;
    unsigned n = 0;
    if (PKCS11_enumerate_keys(slot->token, &keys, &n) != 0) {
        problem(kc, "cannot list the token's private keys", NULL);
        return -1;
    }
    unsigned char id[128];
    size_t id_len = 0;
    if (kc->id_hex != NULL && hex_to_bytes(kc->id_hex, id, sizeof(id), &id_len) != 0) {
        problem(kc, "id is longer than 128 bytes", NULL);
        return -1;
    }
    PKCS11_KEY *found = NULL;
    unsigned matches = 0;
    for (unsigned i = 0; i < n; i++) {
        PKCS11_KEY *c = &keys[i];
        if (kc->label != NULL && (c->label == NULL || strcmp(c->label, kc->label) != 0))
            continue;
        if (kc->id_hex != NULL && (c->id_len != id_len || memcmp(c->id, id, id_len) != 0))
            continue;
        found = c;
        matches++;
    }
    if (matches != 1) {
        problem(kc,
                matches == 0 ? "no private key with that label/id on the token"
                             : "several private keys match: set both label and id",
                NULL);
        return -1;
    }
    e->pkey = PKCS11_get_private_key(found);
    if (e->pkey == NULL) {
        problem(kc, "cannot use the private key", NULL);
        return -1;
    }
    if (family_of(e->pkey, &e->family) != 0 || e->family == FAM_SM2) {
        problem(kc, "unsupported key type on the token (RSA or EC P-256)", NULL);
        return -1;
    }
    e->mod = m;
    return 0;
}

/* ---- key files ---- */

static int load_file(const struct signer_key_conf *kc, struct key *e)
{
    FILE *f = fopen(kc->key_file, "r");
    if (f == NULL) {
        problem(kc, "cannot open", kc->key_file);
        return -1;
    }
    EVP_PKEY *raw = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (raw == NULL) {
        problem(kc, "not an unencrypted PEM private key:", kc->key_file);
        return -1;
    }
    e->pkey = ewtp_keys_as_sm2(raw, EVP_PKEY_KEYPAIR);
    EVP_PKEY_free(raw);
    if (e->pkey == NULL || family_of(e->pkey, &e->family) != 0) {
        problem(kc, "unsupported key type (RSA, EC P-256 or SM2):", kc->key_file);
        return -1;
    }
    return 0;
}

int signer_keys_load(const struct signer_conf *conf, struct signer_keys **out)
{
    *out = NULL;
    struct signer_keys *k = calloc(1, sizeof(*k));
    if (k == NULL || (k->keys = calloc(conf->n_keys, sizeof(*k->keys))) == NULL ||
        (k->commands = ewtp_keys_new()) == NULL) {
        fprintf(stderr, "ewtp-signer: out of memory\n");
        signer_keys_free(k);
        return -1;
    }
    int failed = 0;
    for (size_t i = 0; i < conf->n_keys; i++) {
        const struct signer_key_conf *kc = &conf->keys[i];
        struct key *e = &k->keys[k->n++];
        e->name = strdup(kc->name);
        e->source = kc->source;
        int rc = e->name == NULL ? -1 : 0;
        if (rc == 0 && kc->source == SIGNER_KEY_PKCS11)
            rc = load_pkcs11(k, kc, e);
        else if (rc == 0 && kc->source == SIGNER_KEY_FILE)
            rc = load_file(kc, e);
        else if (rc == 0) {
            struct ewtp_errors *errs = ewtp_errors_new();
            rc = ewtp_keys_add_command(k->commands, kc->name, kc->command, NULL, kc->timeout_ms,
                                       kc->base64 ? EWTP_KEYS_CMD_BASE64 : 0u, errs);
            if (rc != 0)
                problem(kc, "command:",
                        errs && ewtp_errors_count(errs) ? ewtp_errors_at(errs, 0)->message
                                                        : ewtp_strerror(rc));
            ewtp_errors_free(errs);
        }
        failed += rc != 0;
    }
    if (failed > 0) {
        signer_keys_free(k);
        return -1;
    }
    *out = k;
    return 0;
}

/* ---- signing ---- */

static const struct {
    const char *name;
    enum ewtp_sign_alg alg;
    enum family family;
} algs[] = {
    {"rsa-sha1", EWTP_SIGN_RSA_SHA1, FAM_RSA},
    {"rsa-sha256", EWTP_SIGN_RSA_SHA256, FAM_RSA},
    {"rsa-sha512", EWTP_SIGN_RSA_SHA512, FAM_RSA},
    {"ecdsa-sha256", EWTP_SIGN_ECDSA_SHA256, FAM_EC_P256},
    {"sm2-sm3", EWTP_SIGN_SM2_SM3, FAM_SM2},
};

static enum signer_sign_rc sign_pkey(const struct key *e, enum ewtp_sign_alg alg, const void *data,
                                     size_t len, unsigned char **sig, size_t *sig_len,
                                     const char **why)
{
    const EVP_MD *md = alg == EWTP_SIGN_RSA_SHA1     ? EVP_sha1()
                       : alg == EWTP_SIGN_RSA_SHA512 ? EVP_sha512()
                       : alg == EWTP_SIGN_SM2_SM3    ? EVP_sm3()
                                                     : EVP_sha256();
    size_t max = (size_t)EVP_PKEY_get_size(e->pkey);
    unsigned char *buf = malloc(max > 0 ? max : 1);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    enum signer_sign_rc rc = SIGNER_SIGN_FAILED;
    if (buf == NULL || mc == NULL) {
        rc = SIGNER_OUT_OF_MEMORY;
        goto out;
    }
    if (alg == EWTP_SIGN_SM2_SM3) {
        /* The id enters SM2's Z value: set before the digest starts. */
        pc = EVP_PKEY_CTX_new(e->pkey, NULL);
        if (pc == NULL || EVP_PKEY_CTX_set1_id(pc, SM2_ID, strlen(SM2_ID)) <= 0)
            goto out;
        EVP_MD_CTX_set_pkey_ctx(mc, pc);
    }
    if (e->mod != NULL)
        pthread_mutex_lock(&e->mod->lock);
    size_t n = max;
    int ok = EVP_DigestSignInit(mc, NULL, md, NULL, e->pkey) == 1 &&
             EVP_DigestSign(mc, buf, &n, data, len) == 1;
    if (e->mod != NULL)
        pthread_mutex_unlock(&e->mod->lock);
    if (!ok) {
        *why = e->mod != NULL ? "the PKCS#11 token refused or failed" : "OpenSSL signing failed";
        ERR_clear_error();
        goto out;
    }
    *sig = buf;
    *sig_len = n;
    buf = NULL;
    rc = SIGNER_SIGNED;
out:
    free(buf);
    EVP_MD_CTX_free(mc);
    EVP_PKEY_CTX_free(pc);
    return rc;
}

enum signer_sign_rc signer_keys_sign(struct signer_keys *k, const char *name, const char *alg,
                                     const void *data, size_t len, unsigned char **sig,
                                     size_t *sig_len, const char **why)
{
    const char *ignored;
    if (why == NULL)
        why = &ignored;
    *why = NULL;
    const struct key *e = NULL;
    for (size_t i = 0; i < k->n && e == NULL; i++)
        if (strcmp(k->keys[i].name, name) == 0)
            e = &k->keys[i];
    if (e == NULL) {
        *why = "no such key";
        return SIGNER_NO_KEY;
    }
    size_t a = 0;
    while (a < sizeof(algs) / sizeof(algs[0]) && strcmp(algs[a].name, alg) != 0)
        a++;
    if (a == sizeof(algs) / sizeof(algs[0])) {
        *why = "unknown algorithm";
        return SIGNER_BAD_ALG;
    }
    if (e->source != SIGNER_KEY_COMMAND) {
        if (algs[a].family != e->family) {
            *why = "the algorithm does not fit the key";
            return SIGNER_BAD_ALG;
        }
        return sign_pkey(e, algs[a].alg, data, len, sig, sig_len, why);
    }
    /* A command key: the host's runner (a child per request, killed at its timeout). */
    struct ewtp_arena *ar = ewtp_arena_new();
    if (ar == NULL)
        return SIGNER_OUT_OF_MEMORY;
    const unsigned char *s = NULL;
    size_t sl = 0;
    int rc = ewtp_keys_sign(k->commands, name, algs[a].alg, data, len, ar, &s, &sl);
    enum signer_sign_rc out = SIGNER_SIGN_FAILED;
    if (rc == 0 && (*sig = malloc(sl)) != NULL) {
        memcpy(*sig, s, sl);
        *sig_len = sl;
        out = SIGNER_SIGNED;
    } else if (rc == 0) {
        out = SIGNER_OUT_OF_MEMORY;
    } else {
        *why = "the command failed, timed out or printed nothing";
    }
    ewtp_arena_free(ar);
    return out;
}
