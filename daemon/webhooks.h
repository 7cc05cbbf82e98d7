/* webhooks.h — state changes POSTed to the tenant's webhook_url (Standard Webhooks).
 *
 * ewtp_webhook_prepare() runs on a worker (it reads the tenant's secret file): it builds
 * {"type":"message.state","id","tenant","state","at"} and keeps what signing needs.
 * ewtp_webhooks_send() (loop thread) takes it and POSTs it with the headers webhook-id,
 * webhook-timestamp and webhook-signature ("v1,<base64 HMAC-SHA256>", signed anew at each
 * attempt), retrying failures (transport errors, 408, 429, 5xx) with the deliveries'
 * backoff until max_attempts. The outbox is in memory: webhooks still queued when ewtpd
 * stops are lost (the message's state and events in the store are the record).
 */
#ifndef EWTP_WEBHOOKS_H
#define EWTP_WEBHOOKS_H

#include <stdint.h>

#include "backoff.h"
#include "gen.h"
#include "httpc.h"

struct ewtp_webhooks;
struct ewtp_webhook;

/* Loop thread. transport is borrowed and must outlive the webhooks. */
struct ewtp_webhooks *ewtp_webhooks_new(struct event_base *base, struct ewtp_httpc *tr);
/* Drops everything queued (no callbacks). NULL-safe. */
void ewtp_webhooks_free(struct ewtp_webhooks *wh);

/* Any thread. NULL when the tenant has no webhook_url (or on failure, logged). */
struct ewtp_webhook *ewtp_webhook_prepare(const struct ewtp_gen *g, const char *tenant,
                                          const char *id, const char *state, int64_t at);
void ewtp_webhook_free(struct ewtp_webhook *w);

/* Loop thread; takes w (NULL is a no-op). */
void ewtp_webhooks_send(struct ewtp_webhooks *wh, struct ewtp_webhook *w,
                        const struct ewtp_backoff_policy *retry, int64_t timeout_ms);

/* Webhooks sent successfully / given up (for metrics and tests). */
uint64_t ewtp_webhooks_delivered(const struct ewtp_webhooks *wh);
uint64_t ewtp_webhooks_failed(const struct ewtp_webhooks *wh);

#endif
