/* webhooks.h — state changes POSTed to the tenant's webhook_url (Standard Webhooks).
 *
 * Durable: the store queues a webhook in the same transaction as the state change it
 * announces (ewtp_store_outcome.webhook, ewtp_store_receipt_rec.webhook; the dispatcher sets
 * them when ewtp_webhooks_wanted()), so a webhook is never lost to a crash or a restart.
 * This module drains that outbox: it claims due webhooks on a worker (with a lease, so that
 * the claims of an ewtpd that died are due again after it), builds
 * {"type":"message.state","id","tenant","state","at"} and POSTs it with the headers
 * webhook-id (stable per tenant, message, state and time: receivers deduplicate on it),
 * webhook-timestamp and webhook-signature ("v1,<base64 HMAC-SHA256>", signed anew at each
 * attempt, whsig.h). 2xx: done. Transport errors, 408, 429 and 5xx are retried with the
 * deliveries' backoff (Retry-After honoured) until delivery.max_attempts; then, and at once
 * for any other status, the webhook is given up and the message gets a "webhook_failed"
 * event. URL and secret are those of the current generation at each attempt, so a reload
 * that fixes them helps webhooks already queued; a tenant without webhook_url any more
 * drops its queued ones.
 *
 * Delivery is at least once: a webhook whose answer was not recorded before a crash is
 * sent again. Loop thread unless said otherwise.
 */
#ifndef EWTP_WEBHOOKS_H
#define EWTP_WEBHOOKS_H

#include <stdbool.h>
#include <stdint.h>

#include "gen.h"
#include "httpc.h"

struct ewtpd;
struct ewtp_webhooks;

/* Starts draining d->store's outbox (now, on every kick and at least once a second).
 * transport is borrowed and must outlive the webhooks. NULL on failure. */
struct ewtp_webhooks *ewtp_webhooks_new(struct ewtpd *d, struct ewtp_httpc *tr);
/* After the workers were freed: webhooks in flight are made due at once for the next start
 * (they may then arrive twice). No callbacks. NULL-safe. */
void ewtp_webhooks_free(struct ewtp_webhooks *wh);

/* Any thread: the outbox got something, look now rather than at the next scan. NULL-safe. */
void ewtp_webhooks_kick(struct ewtp_webhooks *wh);

/* Any thread: whether tenant has a webhook_url in g (so its state changes queue webhooks). */
bool ewtp_webhooks_wanted(const struct ewtp_gen *g, const char *tenant);

/* Webhooks delivered / given up by this process (for metrics and tests). */
uint64_t ewtp_webhooks_delivered(const struct ewtp_webhooks *wh);
uint64_t ewtp_webhooks_failed(const struct ewtp_webhooks *wh);

#endif
