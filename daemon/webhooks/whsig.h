/* whsig.h — Standard Webhooks signatures (https://www.standardwebhooks.com/).
 *
 * The signed content is "<webhook-id>.<webhook-timestamp>.<body>"; the key is the Base64
 * part of the secret after "whsec_"; the header value is "v1,<Base64 HMAC-SHA256>". Pure
 * and thread-safe. */
#ifndef EWTP_WHSIG_H
#define EWTP_WHSIG_H

#include <stddef.h>
#include <stdint.h>

/* 0 and *out ("v1,..." malloc'd, caller frees), -EWTP_EFORMAT when the secret is not
 * "whsec_<base64>" (surrounding whitespace, e.g. a file's final newline, is ignored), or
 * -EWTP_ENOMEM / -EWTP_ECRYPTO. */
int ewtp_whsig_sign(const char *secret, const char *msg_id, int64_t timestamp_s, const void *body,
                    size_t len, char **out);

#endif
