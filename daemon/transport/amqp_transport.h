/* amqp_transport.h — the "amqp" transport: requests published to an AMQP 0-9-1 broker (RabbitMQ),
 * receipts fetched from a queue.
 *
 * Delivery is at-least-once. A request counts as delivered only when the broker confirmed
 * it (publisher confirms): the publish is persistent (delivery mode 2) and mandatory, so a
 * message no queue takes comes back (basic.return) and is a failure, as is a nack, a
 * closed channel (no such exchange) or no confirm within the timeout. A receipt is acked
 * only after the callback has handed it on and recorded it; until then the broker keeps it
 * and gives it again after a crash or a lost connection.
 *
 * Connections: one for publishing and one for receipts per instance, each opened on first
 * use, guarded by its own mutex and reused; a failed one is closed and opened again on the
 * next call, no sooner than a short backoff (so a broker that is down costs a fast failure,
 * not a connect timeout per message). A configuration change of the instance (URL,
 * credentials file, TLS files, heartbeat) reconnects. librabbitmq services heartbeats only
 * inside calls, so a connection idle for longer than its heartbeat is opened afresh rather
 * than trusted.
 *
 * Every call blocks (bounded by the connect and confirm timeouts): run them on worker
 * threads, never on the event loop. The pool is thread-safe.
 *
 * The URL and credential parsers are conf/amqp_url.h's (config.c checks them at load).
 */
#ifndef EWTP_AMQP_TRANSPORT_H
#define EWTP_AMQP_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/plugin.h>

#include "amqp_url.h"
#include "config.h"

/* ---- broker connections (amqp_transport.c)
 * ---------------------------------------------------------- */

struct ewtp_amqp_pool;

/* Log sink for connection state changes (connected, lost), with syslog priorities. */
typedef void (*ewtp_amqp_log_fn)(int priority, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* NULL on out of memory. log may be NULL. */
struct ewtp_amqp_pool *ewtp_amqp_pool_new(ewtp_amqp_log_fn log);
/* Closes every connection. No call may be running. NULL-safe. */
void ewtp_amqp_pool_free(struct ewtp_amqp_pool *p);

/* Publishes r's body to ic->amqp's exchange with its routing key, message-id r->path (the
 * request's file name), content type from r's Content-Type header or ic->amqp.content_type,
 * persistent, and waits up to confirm_timeout_ms for the broker's confirm.
 * 0 when confirmed; -EWTP_EIO with *why (malloc'd, for the log and transport_error) when
 * not: the caller retries later, which may deliver a duplicate (at-least-once). */
int ewtp_amqp_publish(struct ewtp_amqp_pool *p, const struct ewtp_instance_conf *ic,
                      const struct ewtp_request *r, int64_t confirm_timeout_ms, char **why);

/* What to do with a fetched receipt. */
enum ewtp_amqp_disposition {
    EWTP_AMQP_ACK,    /* handled and recorded: the broker forgets it */
    EWTP_AMQP_REJECT, /* never usable: rejected without requeue (dead-lettered if the queue
                         has a dead-letter exchange, else dropped) */
    EWTP_AMQP_LATER,  /* not usable yet (no message matches it so far): put back at the
                         tail of the queue, and stop fetching until the next call */
};

/* One fetched receipt. first_seen_ms: when ewtpd first fetched it (kept across LATER),
 * the broker's timestamp or now for a new one. Strings are valid during the call only. */
struct ewtp_amqp_delivery {
    const char *message_id; /* NULL when the publisher gave none */
    const void *body;
    size_t len;
    int64_t first_seen_ms;
};
typedef enum ewtp_amqp_disposition (*ewtp_amqp_receipt_fn)(void *arg,
                                                           const struct ewtp_amqp_delivery *d);

/* Fetches up to max messages from ic->amqp.receipt_queue (basic.get, manual ack) and hands
 * each to fn, then acks, rejects or requeues as fn says. *n_handled counts the messages fn
 * saw. 0 when the queue was read (possibly empty), -EWTP_EIO with *why (malloc'd) when the
 * broker could not be reached or refused (no such queue); messages fn saw but that were not
 * acked before a failure come again later. */
int ewtp_amqp_fetch(struct ewtp_amqp_pool *p, const struct ewtp_instance_conf *ic, size_t max,
                    int64_t timeout_ms, ewtp_amqp_receipt_fn fn, void *arg, size_t *n_handled,
                    char **why);

#endif
