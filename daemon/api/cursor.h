/* cursor.h — the list cursors GET /v1/messages gives out in "next" and takes back in ?after=
 * (issue 19).
 *
 * The store's own position is its global accept sequence: handed out as is, it tells a tenant
 * how many messages every tenant sent between two of its own pages. A cursor is therefore the
 * position sealed with AES-256-GCM under a key derived from the instance secret (store.h
 * ewtp_store_instance_key, instance_key.h), a fresh 96-bit nonce, and the tenant as associated
 * data: it reveals nothing of the position (padded to a fixed length, so not even its number of
 * digits), it is refused for any other tenant, and a changed byte is refused. Any node sharing
 * the store opens any node's cursor. Text: base64url without padding, 70 characters.
 *
 * Pure functions of their arguments; thread-safe. */
#ifndef EWTP_CURSOR_H
#define EWTP_CURSOR_H

/* Seals the store's position for tenant: 0 and *out (malloc'd), -EWTP_EINVAL (a position
 * longer than 24 bytes or empty), -EWTP_ECRYPTO, -EWTP_ENOMEM. */
int ewtp_cursor_seal(const unsigned char secret[32], const char *tenant, const char *position,
                     char **out);
/* Opens a cursor given to tenant: 0 and *position (malloc'd), or -EWTP_EINVAL when cursor is
 * not one this gateway gave out to tenant (malformed, altered, or another tenant's). */
int ewtp_cursor_open(const unsigned char secret[32], const char *tenant, const char *cursor,
                     char **position);

#endif
