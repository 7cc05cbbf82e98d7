/* The process's copy of the instance secret and the keyed derivations (instance_key.h). */
#include "instance_key.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ewtp/errors.h>

static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char key_bytes[32];
static bool key_set;

void ewtp_instance_key_set(const unsigned char key[32])
{
    pthread_mutex_lock(&key_mu);
    memcpy(key_bytes, key, sizeof(key_bytes));
    key_set = true;
    pthread_mutex_unlock(&key_mu);
}

void ewtp_instance_key_clear(void)
{
    pthread_mutex_lock(&key_mu);
    OPENSSL_cleanse(key_bytes, sizeof(key_bytes));
    key_set = false;
    pthread_mutex_unlock(&key_mu);
}

bool ewtp_instance_key_known(void)
{
    pthread_mutex_lock(&key_mu);
    bool k = key_set;
    pthread_mutex_unlock(&key_mu);
    return k;
}

int ewtp_instance_mac_with(const unsigned char key[32], const char *purpose, const void *data,
                           size_t len, unsigned char out[32])
{
    if (key == NULL || purpose == NULL || (data == NULL && len > 0) || out == NULL)
        return -EWTP_EINVAL;
    unsigned char sub[EVP_MAX_MD_SIZE];
    unsigned sub_len = 0, out_len = 0;
    int ok = HMAC(EVP_sha256(), key, 32, (const unsigned char *)purpose, strlen(purpose), sub,
                  &sub_len) != NULL &&
             HMAC(EVP_sha256(), sub, (int)sub_len, (const unsigned char *)(data ? data : ""), len,
                  out, &out_len) != NULL &&
             out_len == 32;
    OPENSSL_cleanse(sub, sizeof(sub));
    return ok ? 0 : -EWTP_ECRYPTO;
}

int ewtp_instance_mac(const char *purpose, const void *data, size_t len, unsigned char out[32])
{
    unsigned char k[32];
    pthread_mutex_lock(&key_mu);
    bool have = key_set;
    if (have)
        memcpy(k, key_bytes, sizeof(k));
    pthread_mutex_unlock(&key_mu);
    if (!have)
        return -EWTP_ENOTFOUND;
    int rc = ewtp_instance_mac_with(k, purpose, data, len, out);
    OPENSSL_cleanse(k, sizeof(k));
    return rc;
}
