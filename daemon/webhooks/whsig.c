/* Standard Webhooks signing; see whsig.h. */
#include "whsig.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ewtp/arena.h>
#include <ewtp/crypto.h>
#include <ewtp/errors.h>

int ewtp_whsig_sign(const char *secret, const char *msg_id, int64_t timestamp_s, const void *body,
                    size_t len, char **out)
{
    *out = NULL;
    if (secret == NULL || msg_id == NULL)
        return -EWTP_EINVAL;
    while (*secret == ' ' || *secret == '\t' || *secret == '\n' || *secret == '\r')
        secret++;
    if (strncmp(secret, "whsec_", 6) != 0)
        return -EWTP_EFORMAT;
    secret += 6;
    size_t n = strlen(secret);
    while (n > 0 && (secret[n - 1] == ' ' || secret[n - 1] == '\t' || secret[n - 1] == '\n' ||
                     secret[n - 1] == '\r'))
        n--;
    struct ewtp_arena *a = ewtp_arena_new();
    if (a == NULL)
        return -EWTP_ENOMEM;
    unsigned char *key = NULL;
    size_t key_len = 0;
    int rc = ewtp_base64_decode(a, secret, n, 0, &key, &key_len);
    if (rc < 0 || key_len == 0) {
        ewtp_arena_free(a);
        return rc == -EWTP_ENOMEM ? rc : -EWTP_EFORMAT;
    }
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, timestamp_s);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    size_t id_len = strlen(msg_id), ts_len = strlen(ts);
    unsigned char *msg = ewtp_arena_alloc(a, id_len + ts_len + len + 2);
    rc = msg ? 0 : -EWTP_ENOMEM;
    if (msg) {
        memcpy(msg, msg_id, id_len);
        msg[id_len] = '.';
        memcpy(msg + id_len + 1, ts, ts_len);
        msg[id_len + 1 + ts_len] = '.';
        if (len)
            memcpy(msg + id_len + ts_len + 2, body, len);
        if (HMAC(EVP_sha256(), key, (int)key_len, msg, id_len + ts_len + len + 2, mac, &mac_len) ==
            NULL)
            rc = -EWTP_ECRYPTO;
    }
    if (rc == 0) {
        const char *b64 = ewtp_base64_encode(a, mac, mac_len);
        size_t m = b64 ? strlen(b64) + 4 : 0;
        *out = b64 ? malloc(m) : NULL;
        if (*out)
            snprintf(*out, m, "v1,%s", b64);
        else
            rc = -EWTP_ENOMEM;
    }
    ewtp_arena_free(a);
    return rc;
}
