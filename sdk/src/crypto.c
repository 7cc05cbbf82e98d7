/* crypto.c — digests (OpenSSL EVP), hex, Base64, UUIDs. See ewtp/crypto.h. */
#include <ewtp/crypto.h>
#include <ewtp/errors.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>

const unsigned char ewtp_uuid_ns_dns[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                            0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
const unsigned char ewtp_uuid_ns_url[16] = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
                                            0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
const unsigned char ewtp_uuid_ns_oid[16] = {0x6b, 0xa7, 0xb8, 0x12, 0x9d, 0xad, 0x11, 0xd1,
                                            0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
const unsigned char ewtp_uuid_ns_x500[16] = {0x6b, 0xa7, 0xb8, 0x14, 0x9d, 0xad, 0x11, 0xd1,
                                             0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
const unsigned char ewtp_uuid_ns_ewtp[16] = {0xbe, 0xb6, 0xc1, 0x4b, 0x27, 0x64, 0x5e, 0xcf,
                                             0x8d, 0x12, 0xe6, 0x34, 0x27, 0xf8, 0xc9, 0x6a};

static const char *digest_name(enum ewtp_digest_alg alg)
{
    switch (alg) {
    case EWTP_DIGEST_SHA1:
        return "SHA1";
    case EWTP_DIGEST_SHA256:
        return "SHA256";
    case EWTP_DIGEST_SM3:
        return "SM3";
    }
    return NULL;
}

size_t ewtp_digest_size(enum ewtp_digest_alg alg)
{
    switch (alg) {
    case EWTP_DIGEST_SHA1:
        return 20;
    case EWTP_DIGEST_SHA256:
    case EWTP_DIGEST_SM3:
        return 32;
    }
    return 0;
}

/* Each algorithm's method, fetched once (issue 20: fetching it for every digest was about a
 * third of the instructions of a 1.6 KB message's SHA-256, and an accept takes three). An
 * EVP_MD is read-only once fetched and may be shared by threads; these live as long as the
 * library. A failed fetch is not kept: a provider loaded later is found then. */
static _Atomic(EVP_MD *) fetched_md[EWTP_DIGEST_SM3 + 1];

static EVP_MD *digest_md(enum ewtp_digest_alg alg, const char *name)
{
    EVP_MD *md = atomic_load(&fetched_md[alg]);
    if (md)
        return md;
    md = EVP_MD_fetch(NULL, name, NULL);
    EVP_MD *none = NULL;
    if (md && !atomic_compare_exchange_strong(&fetched_md[alg], &none, md)) {
        EVP_MD_free(md); /* another thread's is kept */
        md = none;
    }
    return md;
}

int ewtp_digest(enum ewtp_digest_alg alg, const void *data, size_t len, unsigned char *out,
                size_t *out_len)
{
    const char *name = digest_name(alg);
    if (name == NULL || out == NULL || out_len == NULL || (data == NULL && len > 0))
        return -EWTP_EINVAL;
    /* Explicit fetch so a provider without the algorithm is "unsupported", not a crash. */
    EVP_MD *md = digest_md(alg, name);
    if (md == NULL)
        return -EWTP_EUNSUPP;
    unsigned int n = 0;
    int ok = EVP_Digest(len > 0 ? data : "", len, out, &n, md, NULL);
    if (ok != 1)
        return -EWTP_ECRYPTO;
    *out_len = n;
    return 0;
}

/* ---- Hex ---- */

char *ewtp_hex_encode(struct ewtp_arena *a, const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    if (len > (SIZE_MAX - 1) / 2)
        return NULL;
    char *s = ewtp_arena_alloc(a, len * 2 + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[len * 2] = '\0';
    return s;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ewtp_hex_decode(struct ewtp_arena *a, const char *text, size_t len, unsigned char **out,
                    size_t *out_len)
{
    if (out == NULL || out_len == NULL || (text == NULL && len > 0))
        return -EWTP_EINVAL;
    if (len % 2 != 0)
        return -EWTP_EFORMAT;
    unsigned char *b = ewtp_arena_alloc(a, len / 2 + 1);
    if (b == NULL)
        return -EWTP_ENOMEM;
    for (size_t i = 0; i < len; i += 2) {
        int hi = hexval(text[i]), lo = hexval(text[i + 1]);
        if (hi < 0 || lo < 0)
            return -EWTP_EFORMAT;
        b[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    *out = b;
    *out_len = len / 2;
    return 0;
}

/* ---- Base64 ---- */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *ewtp_base64_encode(struct ewtp_arena *a, const void *data, size_t len)
{
    return ewtp_base64_encode_ex(a, data, len, 0, 0);
}

char *ewtp_base64_encode_ex(struct ewtp_arena *a, const void *data, size_t len, unsigned flags,
                            size_t line_len)
{
    const char *alpha = (flags & EWTP_BASE64_URL) ? b64_url : b64_std;
    bool pad = !(flags & EWTP_BASE64_URL);
    const unsigned char *p = data;
    if (len > SIZE_MAX / 2)
        return NULL;
    size_t chars = (len + 2) / 3 * 4;
    size_t breaks = line_len > 0 && chars > 0 ? (chars - 1) / line_len : 0;
    char *s = ewtp_arena_alloc(a, chars + breaks + 1);
    if (s == NULL)
        return NULL;
    size_t o = 0, col = 0;
    char quad[4];
    for (size_t i = 0; i < len; i += 3) {
        size_t rem = len - i;
        unsigned v = (unsigned)p[i] << 16;
        if (rem > 1)
            v |= (unsigned)p[i + 1] << 8;
        if (rem > 2)
            v |= p[i + 2];
        quad[0] = alpha[(v >> 18) & 63];
        quad[1] = alpha[(v >> 12) & 63];
        quad[2] = rem > 1 ? alpha[(v >> 6) & 63] : '=';
        quad[3] = rem > 2 ? alpha[v & 63] : '=';
        for (int k = 0; k < 4; k++) {
            if (quad[k] == '=' && !pad)
                break;
            if (line_len > 0 && col == line_len) {
                s[o++] = '\n';
                col = 0;
            }
            s[o++] = quad[k];
            col++;
        }
    }
    s[o] = '\0';
    return s;
}

static int b64val(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int ewtp_base64_decode(struct ewtp_arena *a, const char *text, size_t len, unsigned flags,
                       unsigned char **out, size_t *out_len)
{
    bool url = flags & EWTP_BASE64_URL, ws = flags & EWTP_BASE64_ALLOW_WS;
    if (out == NULL || out_len == NULL || (text == NULL && len > 0))
        return -EWTP_EINVAL;
    unsigned char *b = ewtp_arena_alloc(a, len / 4 * 3 + 4);
    if (b == NULL)
        return -EWTP_ENOMEM;
    size_t o = 0, nsym = 0, npad = 0;
    unsigned acc = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (ws && is_ws(c))
            continue;
        if (c == '=') {
            npad++;
            continue;
        }
        int v = b64val(c, url);
        if (v < 0 || npad > 0) /* bad character, or data after padding */
            return -EWTP_EFORMAT;
        acc = acc << 6 | (unsigned)v;
        if (++nsym % 4 == 0) {
            b[o++] = (unsigned char)(acc >> 16);
            b[o++] = (unsigned char)(acc >> 8);
            b[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    size_t tail = nsym % 4;
    if (tail == 1 || npad > 2)
        return -EWTP_EFORMAT;
    if (npad > 0 && (tail == 0 || tail + npad != 4))
        return -EWTP_EFORMAT;
    if (!url && tail != 0 && npad == 0) /* standard alphabet requires the padding */
        return -EWTP_EFORMAT;
    if (tail == 2) {
        if (acc & 0xf)
            return -EWTP_EFORMAT; /* non-canonical: unused bits set */
        b[o++] = (unsigned char)(acc >> 4);
    } else if (tail == 3) {
        if (acc & 0x3)
            return -EWTP_EFORMAT;
        b[o++] = (unsigned char)(acc >> 10);
        b[o++] = (unsigned char)(acc >> 2);
    }
    b[o] = '\0';
    *out = b;
    *out_len = o;
    return 0;
}

/* ---- UUIDs ---- */

void ewtp_uuid_format(const unsigned char uuid[16], char out[EWTP_UUID_STRLEN])
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = digits[uuid[i] >> 4];
        out[o++] = digits[uuid[i] & 15];
    }
    out[o] = '\0';
}

int ewtp_uuid_parse(const char *text, unsigned char out[16])
{
    if (text == NULL || out == NULL || strlen(text) != 36)
        return -EWTP_EFORMAT;
    size_t j = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            if (text[j++] != '-')
                return -EWTP_EFORMAT;
        }
        int hi = hexval(text[j]), lo = hexval(text[j + 1]);
        if (hi < 0 || lo < 0)
            return -EWTP_EFORMAT;
        out[i] = (unsigned char)(hi << 4 | lo);
        j += 2;
    }
    return 0;
}

static void set_version(unsigned char b[16], unsigned version)
{
    b[6] = (unsigned char)((b[6] & 0x0f) | (version << 4));
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant 10xx */
}

void ewtp_uuid_v4_from(const unsigned char random[16], char out[EWTP_UUID_STRLEN])
{
    unsigned char b[16];
    memcpy(b, random, 16);
    set_version(b, 4);
    ewtp_uuid_format(b, out);
}

int ewtp_uuid_v4(const struct ewtp_host *host, char out[EWTP_UUID_STRLEN])
{
    if (!EWTP_HOST_HAS(host, random))
        return -EWTP_EUNSUPP;
    unsigned char r[16];
    int rc = host->random(host->ctx, r, sizeof(r));
    if (rc < 0)
        return rc;
    ewtp_uuid_v4_from(r, out);
    return 0;
}

int ewtp_uuid_v5(const unsigned char ns[16], const void *name, size_t len,
                 char out[EWTP_UUID_STRLEN])
{
    if (ns == NULL || out == NULL || (name == NULL && len > 0))
        return -EWTP_EINVAL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, ns, 16) == 1 &&
             (len == 0 || EVP_DigestUpdate(ctx, name, len) == 1) &&
             EVP_DigestFinal_ex(ctx, h, &n) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -EWTP_ECRYPTO;
    set_version(h, 5);
    ewtp_uuid_format(h, out);
    return 0;
}

/* ---- Signature verification ---- */

/* The SM2 distinguishing id the host's signer uses (GB/T 35276 default). */
#define SIG_SM2_ID "1234567812345678"

/* A public key on the SM2 curve decodes from a certificate as an "EC" key, which would
 * verify as ECDSA: rebuild it as an SM2 key. New reference or NULL. */
static EVP_PKEY *pub_as_sm2(EVP_PKEY *k)
{
    char group[64] = "";
    size_t gl = 0;
    if (EVP_PKEY_is_a(k, "SM2")) {
        EVP_PKEY_up_ref(k);
        return k;
    }
    if (!EVP_PKEY_is_a(k, "EC") ||
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &gl) !=
            1 ||
        strcmp(group, "SM2") != 0)
        return NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY *out = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
    if (c != NULL && EVP_PKEY_todata(k, EVP_PKEY_PUBLIC_KEY, &params) == 1 &&
        EVP_PKEY_fromdata_init(c) == 1)
        EVP_PKEY_fromdata(c, &out, EVP_PKEY_PUBLIC_KEY, params);
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(c);
    return out;
}

int ewtp_sig_verify(const unsigned char *cert_der, size_t cert_len, enum ewtp_sign_alg alg,
                    const void *data, size_t len, const unsigned char *sig, size_t sig_len)
{
    if (cert_der == NULL || sig == NULL || (data == NULL && len > 0) || cert_len > LONG_MAX)
        return -EWTP_EINVAL;
    const char *md_name = NULL;
    switch (alg) {
    case EWTP_SIGN_RSA_SHA1:
        md_name = "SHA1";
        break;
    case EWTP_SIGN_RSA_SHA256:
    case EWTP_SIGN_ECDSA_SHA256:
        md_name = "SHA256";
        break;
    case EWTP_SIGN_SM2_SM3:
        md_name = "SM3";
        break;
    case EWTP_SIGN_RSA_SHA512:
        md_name = "SHA512";
        break;
    }
    if (md_name == NULL)
        return -EWTP_EUNSUPP;
    const unsigned char *p = cert_der;
    X509 *x = d2i_X509(NULL, &p, (long)cert_len);
    if (x == NULL || p != cert_der + cert_len) {
        X509_free(x);
        return -EWTP_EFORMAT;
    }
    EVP_PKEY *raw = X509_get0_pubkey(x);
    EVP_PKEY *key = NULL;
    int rc = -EWTP_EUNSUPP;
    if (raw == NULL) {
        rc = -EWTP_EFORMAT;
    } else if (alg == EWTP_SIGN_SM2_SM3) {
        key = pub_as_sm2(raw);
    } else if ((alg == EWTP_SIGN_ECDSA_SHA256) ? EVP_PKEY_is_a(raw, "EC")
                                               : EVP_PKEY_is_a(raw, "RSA")) {
        EVP_PKEY_up_ref(raw);
        key = raw;
    }
    EVP_MD *md = key ? EVP_MD_fetch(NULL, md_name, NULL) : NULL;
    EVP_MD_CTX *mc = md ? EVP_MD_CTX_new() : NULL;
    EVP_PKEY_CTX *pc = NULL;
    if (mc != NULL) {
        rc = -EWTP_ECRYPTO;
        if (alg == EWTP_SIGN_SM2_SM3) {
            /* The id enters SM2's Z value: set before the digest starts, as the signer does. */
            pc = EVP_PKEY_CTX_new(key, NULL);
            if (pc == NULL || EVP_PKEY_CTX_set1_id(pc, SIG_SM2_ID, strlen(SIG_SM2_ID)) <= 0)
                goto out;
            EVP_MD_CTX_set_pkey_ctx(mc, pc);
        }
        if (EVP_DigestVerifyInit(mc, NULL, md, NULL, key) == 1 &&
            EVP_DigestVerify(mc, sig, sig_len, len > 0 ? data : (const void *)"", len) == 1)
            rc = 0;
    } else if (key != NULL) {
        rc = md == NULL ? -EWTP_EUNSUPP : -EWTP_ENOMEM;
    }
out:
    EVP_MD_CTX_free(mc);
    EVP_PKEY_CTX_free(pc);
    EVP_MD_free(md);
    EVP_PKEY_free(key);
    X509_free(x);
    return rc;
}
