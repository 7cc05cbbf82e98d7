/* dispatcher.h — delivery: claims due work from the store, translates, signs and sends it
 * through a transport, records outcomes and receipts, retries with backoff, polls, takes
 * inbound receipts, runs cancels and waits (DESIGN.md, "The flow of a message"). Runs on the
 * loop thread; the blocking parts on workers.
 */
#ifndef EWTP_DISPATCHER_H
#define EWTP_DISPATCHER_H

#include <stddef.h>
#include <stdint.h>

#include <ewtp/plugin.h>

#include "daemon.h"
#include "store.h"

int ewtp_dispatcher_start(struct ewtpd *d, struct ewtp_errors *why);
/* Claims nothing more; deliveries in flight finish or are abandoned (their lease expires
 * and the next start sends them again). Idempotent; loop thread. */
void ewtp_dispatcher_stop(struct ewtpd *d);
/* Frees everything (after the loop ended); d->dispatcher becomes NULL. NULL-safe. */
void ewtp_dispatcher_free(struct ewtpd *d);
/* Something was accepted: look for due work now rather than at the next scan. */
void ewtp_dispatcher_kick(struct ewtpd *d);
/* Loop thread: webhooks delivered and given up by this process (0 when not running). */
void ewtp_dispatcher_webhook_counts(struct ewtpd *d, uint64_t *delivered, uint64_t *failed);

/* What the dispatcher answers to an API operation (cancel, inbound). The API layer maps it to
 * HTTP (http_messages.c); the dispatcher knows no status codes or bodies. */
enum ewtp_dispatch_result {
    EWTP_DISPATCH_OK = 0,       /* done: the cancel is recorded, the inbound item correlated */
    EWTP_DISPATCH_NOT_FOUND,    /* no such message (of this tenant), instance, or match */
    EWTP_DISPATCH_CONFLICT,     /* the message's state or the plugin allows it not now */
    EWTP_DISPATCH_UNSUPPORTED,  /* the plugin takes no such item at all */
    EWTP_DISPATCH_UNRECOGNISED, /* the plugin does not recognise the item */
    EWTP_DISPATCH_UNAVAILABLE,  /* the dispatcher or the store cannot take it now */
    EWTP_DISPATCH_FAILED,       /* an error of ours (out of memory, a store error) */
};
/* Borrowed for the duration of the reply callback. */
struct ewtp_dispatch_reply {
    enum ewtp_dispatch_result result;
    const char *message;              /* unless OK: a sentence for the sender */
    const struct ewtp_errors *errors; /* CONFLICT from the plugin's checks: its errors, or NULL */
    const char *id;                   /* OK: the message concerned */
    enum ewtp_store_state state;      /* OK (cancel): the message's state now */
};
/* Completion of an asynchronous API operation, on the loop thread. */
typedef void (*ewtpd_reply_fn)(void *arg, const struct ewtp_dispatch_reply *r);
/* POST /v1/messages/{id}/cancel: OK when the cancel is recorded (sent once the authority has
 * the message), CONFLICT with the reason (or the plugin's errors) when the plugin or the
 * message's state allows no cancel now, NOT_FOUND. */
void ewtp_dispatcher_cancel(struct ewtpd *d, const char *tenant, const char *id, const char *reason,
                            ewtpd_reply_fn reply, void *arg);
/* POST /v1/inbound/{instance} (already authenticated): hands the body to the plugin's
 * receive and records the outcome. OK with the message's id when correlated, NOT_FOUND when
 * no message matches, UNRECOGNISED/UNSUPPORTED when the plugin takes no such item.
 * headers/body are copied. */
void ewtp_dispatcher_inbound(struct ewtpd *d, const char *instance,
                             const struct ewtp_header *headers, size_t n_headers, const void *body,
                             size_t len, ewtpd_reply_fn reply, void *arg);

#endif
