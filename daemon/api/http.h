/* http.h — private to the HTTP API (http.c: server, TLS, connections, routing, replies,
 * metrics; http_messages.c: the /v1 endpoints' work on the worker pool).
 *
 * One struct http_req lives from the moment evhttp hands a complete request to us until
 * its reply is sent. It holds a reference on the generation it started with (so the
 * tenant, the routes and the plugin instances it uses stay valid for its whole life, even
 * across a reload) and is always on the owner's list, so that ewtp_http_free() can free
 * requests whose worker or store completion never came (shutdown). Everything here runs on
 * the loop thread except the *_work functions, which run on a worker with the request to
 * themselves.
 */
#ifndef EWTP_HTTP_H
#define EWTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/arena.h>
#include <ewtp/message.h>

#include "daemon.h"
#include "dispatcher.h"
#include "gen.h"
#include "reload.h"
#include "store.h"
#include "workers.h"

struct evhttp_request;

enum http_route {
    HTTP_R_NONE = -1,
    HTTP_R_LIVEZ,
    HTTP_R_READYZ,
    HTTP_R_METRICS,
    HTTP_R_SUBMIT,   /* POST /v1/messages */
    HTTP_R_LIST,     /* GET /v1/messages */
    HTTP_R_STATUS,   /* GET /v1/messages/{id} */
    HTTP_R_EVENTS,   /* GET /v1/messages/{id}/events */
    HTTP_R_CANCEL,   /* POST /v1/messages/{id}/cancel */
    HTTP_R_INBOUND,  /* POST /v1/inbound/{instance} */
    HTTP_R_OPENAPI,  /* GET /v1/openapi.json (no credentials) */
    HTTP_R_EVIDENCE, /* GET /v1/messages/{id}/evidence (a tar archive, issue 18) */
};

struct http_req {
    struct ewtp_http *h;
    struct ewtpd *d;
    struct evhttp_request *er;
    struct ewtp_gen *gen;                  /* own reference */
    const struct ewtp_tenant_conf *tenant; /* borrowed while gen is held; NULL: none */
    enum http_route route;
    int64_t start_us; /* monotonic, for the latency histogram */
    char *id;         /* message id or instance name from the path */
    char *body;       /* request body, NUL-terminated (NULL when empty) */
    size_t body_len;
    /* GET /v1/messages */
    char *q_state, *q_destination, *q_after;
    size_t q_limit;
    /* The answer computed on a worker: status and body (malloc'd), Retry-After or NULL. */
    int status;
    char *reply;
    const char *retry_after;
    const char *content_type; /* NULL: application/json */
    size_t reply_len;         /* binary replies (evidence tar): its length; 0: strlen */
    /* POST /v1/messages: what the worker prepared for the store (strings in arena). */
    struct ewtp_arena *arena;
    struct ewtp_message *msg;
    char *canonical;
    char hash[65];
    const char *kind, *destination, *instance, *ordering_key, *batch_key, *warnings;
    const char *const *relations; /* classify's relation keys (arena) */
    size_t n_relations;
    bool needs_chain;
    const char *wait_for; /* classify's wait (arena); NULL: none */
    enum ewtp_store_state wait_state;
    int accept_rc;
    enum ewtp_store_accept_result accept_result;
    /* /metrics and /readyz: store figures read on a worker. */
    struct ewtp_store_count *counts;
    size_t n_counts;
    int store_rc;
    uint64_t depth;
    int64_t oldest_ms;
    uint64_t ops_pending;    /* operations on messages (cancels) not ended yet */
    uint64_t evidence_bytes; /* stored evidence (issue 18); 0 when the backend keeps none */
    uint64_t snap_reads;     /* /metrics: the store reads so far (http.c METRICS_STORE_MS) */
    /* Lists of the owner (loop thread; done_next under the owner's lock). */
    struct http_req *prev, *next;
    struct http_req *done_next;
};

/* Sends status with json (malloc'd; taken) and frees r. Adds Retry-After when r->retry_after
 * is set. json NULL: {"error":"internal","message":...}. */
void ewtp_http_reply(struct http_req *r, int status, char *json);
/* {"error":error,"message":message} with status. */
void ewtp_http_reply_error(struct http_req *r, int status, const char *error, const char *message);
/* {"error":error,"message":message} as a malloc'd string (NULL when out of memory). */
char *ewtp_http_error_json(const char *error, const char *message);

/* Runs the request's work on the worker pool and replies from done (which may continue,
 * e.g. to the store). On a full or stopping pool: 503 with Retry-After. */
void ewtp_http_run(struct http_req *r, void (*work)(void *), void (*done)(void *));
/* Done callback that sends r->status / r->reply as computed by the work function. */
void ewtp_http_done_reply(void *arg);

/* POST /v1/messages: worker part (parse, route, classify, related, validate, canonical). */
void ewtp_http_submit_work(void *arg);
/* ... then on the loop: the worker's error (a queued accept is answered by the store's
 * completion instead). */
void ewtp_http_submit_done(void *arg);
/* Worker parts of the GET endpoints and of the 200 for an exact repeat. */
void ewtp_http_status_work(void *arg);
void ewtp_http_events_work(void *arg);
void ewtp_http_evidence_work(void *arg);
void ewtp_http_list_work(void *arg);
/* POST /v1/messages/{id}/cancel and POST /v1/inbound/{instance} (loop thread). */
void ewtp_http_cancel(struct http_req *r);
void ewtp_http_inbound(struct http_req *r);
struct ewtp_gen_instance;
/* token (NULL: none) is gi's inbound token (compared by digest in constant time); false when
 * gi is NULL or has none. */
bool ewtp_http_inbound_token_ok(const struct ewtp_gen_instance *gi, const char *token);
/* Queues r's accept with the store from the worker that validated it (issue 20: no trip
 * through the loop in between; the store's completion is the only answer the loop gets, the
 * worker's done callback is skipped): 0, and r is not the caller's any more; or -1 with
 * r->status 503 and its reply set. */
int ewtp_http_accept_enqueue(struct http_req *r);

/* ---- the listeners (http.c) ---------------------------------------------------------------- */
/* Binds every listener of the current generation's configuration and serves the API.
 * 0, or a negative code with the reason (address in use, TLS files) in why. */
int ewtp_http_start(struct ewtpd *d, struct ewtp_errors *why);
/* Stops accepting connections; in-flight requests finish (bounded by the timeout).
 * Idempotent; loop thread. */
void ewtp_http_stop(struct ewtpd *d);
/* Frees everything (after the loop ended); d->http becomes NULL. NULL-safe. */
void ewtp_http_free(struct ewtpd *d);

#endif
