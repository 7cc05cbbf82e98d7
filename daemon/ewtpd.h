/* ewtpd.h — the daemon's shared context and the contracts between its modules.
 *
 * One event loop thread owns the libevent base, the listeners, the HTTP client
 * connections, the timers and the current generation pointer. Worker threads (workers.h)
 * parse, validate, translate, sign and call the store; the store's writer thread commits
 * accepts. Nothing blocks the loop.
 *
 * Modules: http.c (the /v1 API, /livez, /readyz, /metrics), dispatcher.c (claims, delivery,
 * retries, poller, inbound, cancel), webhooks.c, gen.c (configuration generations),
 * store*.c, workers.c, loader.c, keys.c, hostctx.c; ewtpd.c holds main().
 */
#ifndef EWTPD_H
#define EWTPD_H

#include <stdbool.h>
#include <stdint.h>

#include <ewtp/plugin.h>

#include "gen.h"
#include "store.h"
#include "workers.h"

struct event_base;
struct ewtp_http;
struct ewtp_dispatcher;
struct ewtp_admin;
struct ewtp_metrics;
struct ewtpd_retired;

struct ewtpd {
    struct event_base *base;
    const char *config_path;
    struct ewtp_gen *gen; /* current generation; read and swapped on the loop thread only */
    uint64_t next_gen_id;
    struct ewtp_store *store;
    struct ewtp_workers *workers;
    struct ewtp_http *http;
    struct ewtp_dispatcher *dispatcher;
    struct ewtp_admin *admin;
    struct ewtp_metrics *metrics;  /* delivery and store latencies (metrics.h) */
    struct ewtpd_retired *retired; /* replaced generations still draining (ewtpd.c) */
    int64_t started_ms;
    bool stopping; /* set on SIGTERM/SIGINT: no new work, drain, then exit */
    /* Reload outcomes (metrics, status). last_reload_error is malloc'd or NULL. */
    uint64_t reloads_ok, reloads_failed;
    char *last_reload_error;
};

/* Called on the loop when a reload ended: ok and the generation now in use, or the reasons
 * (borrowed for the call) while the running generation stays. */
typedef void (*ewtpd_reload_fn)(void *arg, bool ok, uint64_t gen_id, const struct ewtp_errors *why);
/* Starts a reload (SIGHUP, ewtpctl reload): the new generation is built on a worker, off the
 * loop, and swapped in on the loop; requests in flight keep the one they hold. done may be
 * NULL. 0, or -EWTP_EINVAL while stopping. Loop thread. */
int ewtpd_reload(struct ewtpd *d, ewtpd_reload_fn done, void *arg);

/* The current generation with a new reference (loop thread); caller unrefs. */
struct ewtp_gen *ewtpd_gen_acquire(struct ewtpd *d);
/* Wall clock, ms since the epoch. */
int64_t ewtpd_now_ms(void);
/* A log line to journald (under systemd) or stderr, with personal data redacted
 * (hostctx.h ewtp_redact). priority is syslog's (LOG_ERR ... LOG_DEBUG). */
void ewtpd_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same about one message: journald gets the fields EWTP_MSG_ID, TENANT, PLUGIN (any may
 * be NULL) and MESSAGE_ID (a sd-id128 naming the event type, or NULL). */
void ewtpd_log_msg(int priority, const char *message_id, const char *msg_id, const char *tenant,
                   const char *plugin, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- http.c ----------------------------------------------------------------------------- */
/* Binds every listener of the current generation's configuration and serves the API.
 * 0, or a negative code with the reason (address in use, TLS files) in why. */
int ewtp_http_start(struct ewtpd *d, struct ewtp_errors *why);
/* Stops accepting connections; in-flight requests finish (bounded by the timeout).
 * Idempotent; loop thread. */
void ewtp_http_stop(struct ewtpd *d);
/* Frees everything (after the loop ended); d->http becomes NULL. NULL-safe. */
void ewtp_http_free(struct ewtpd *d);

/* ---- dispatcher.c ----------------------------------------------------------------------- */
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
