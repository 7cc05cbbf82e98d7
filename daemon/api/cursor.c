/* Sealed list cursors (cursor.h): AES-256-GCM, tenant as associated data. */
#include "cursor.h"

#include "instance_key.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <ewtp/errors.h>

#define POS_MAX 24 /* the plaintext: the position, NUL-padded to a fixed length */
#define NONCE_LEN 12
#define TAG_LEN 16
#define RAW_LEN (NONCE_LEN + POS_MAX + TAG_LEN) /* 52 bytes */
#define TEXT_LEN ((RAW_LEN * 4 + 2) / 3)        /* 70 base64url characters, no padding */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void enc64(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64url[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
}

/* Exactly TEXT_LEN base64url characters into RAW_LEN bytes; false otherwise. */
static bool dec64(const char *in, unsigned char *out)
{
    if (strlen(in) != TEXT_LEN)
        return false;
    unsigned v = 0;
    int bits = 0;
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        const char *k = strchr(b64url, *p);
        if (k == NULL || *p == '\0')
            return false;
        v = (v << 6) | (unsigned)(k - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == RAW_LEN)
                return false;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    return o == RAW_LEN;
}

static int cursor_key(const unsigned char secret[32], unsigned char key[32])
{
    return ewtp_instance_mac_with(secret, "list-cursor", "v1", 2, key);
}

int ewtp_cursor_seal(const unsigned char secret[32], const char *tenant, const char *position,
                     char **out)
{
    size_t plen = position ? strlen(position) : 0;
    if (secret == NULL || tenant == NULL || plen == 0 || plen > POS_MAX || out == NULL)
        return -EWTP_EINVAL;
    unsigned char key[32], raw[RAW_LEN], pt[POS_MAX] = {0};
    memcpy(pt, position, plen);
    int rc = cursor_key(secret, key);
    if (rc == 0 && RAND_bytes(raw, NONCE_LEN) != 1)
        rc = -EWTP_ECRYPTO;
    EVP_CIPHER_CTX *c = rc == 0 ? EVP_CIPHER_CTX_new() : NULL;
    int len = 0;
    if (rc == 0 &&
        (c == NULL || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
         EVP_EncryptUpdate(c, NULL, &len, (const unsigned char *)tenant, (int)strlen(tenant)) !=
             1 ||
         EVP_EncryptUpdate(c, raw + NONCE_LEN, &len, pt, POS_MAX) != 1 || len != POS_MAX ||
         EVP_EncryptFinal_ex(c, raw + NONCE_LEN + POS_MAX, &len) != 1 ||
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + NONCE_LEN + POS_MAX) != 1))
        rc = -EWTP_ECRYPTO;
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc < 0)
        return rc;
    char *text = malloc(TEXT_LEN + 1);
    if (text == NULL)
        return -EWTP_ENOMEM;
    enc64(raw, RAW_LEN, text);
    *out = text;
    return 0;
}

int ewtp_cursor_open(const unsigned char secret[32], const char *tenant, const char *cursor,
                     char **position)
{
    unsigned char raw[RAW_LEN], key[32], pt[POS_MAX + 1];
    if (secret == NULL || tenant == NULL || cursor == NULL || position == NULL ||
        !dec64(cursor, raw))
        return -EWTP_EINVAL;
    int rc = cursor_key(secret, key);
    EVP_CIPHER_CTX *c = rc == 0 ? EVP_CIPHER_CTX_new() : NULL;
    int len = 0;
    if (rc == 0 &&
        (c == NULL || EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
         EVP_DecryptUpdate(c, NULL, &len, (const unsigned char *)tenant, (int)strlen(tenant)) !=
             1 ||
         EVP_DecryptUpdate(c, pt, &len, raw + NONCE_LEN, POS_MAX) != 1 || len != POS_MAX ||
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + POS_MAX) != 1 ||
         EVP_DecryptFinal_ex(c, pt + POS_MAX, &len) != 1))
        rc = -EWTP_EINVAL; /* altered, or sealed for another tenant or gateway */
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc < 0)
        return rc;
    pt[POS_MAX] = '\0';
    size_t n = strlen((const char *)pt);
    if (n == 0)
        return -EWTP_EINVAL;
    char *p = malloc(n + 1);
    if (p == NULL)
        return -EWTP_ENOMEM;
    memcpy(p, pt, n + 1);
    *position = p;
    return 0;
}
