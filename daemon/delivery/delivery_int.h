/* delivery_int.h — what the dispatcher's files (delivery/) share: the job, the dispatcher,
 * held batches and tokens, and the functions one file calls in another (dsp_ prefix).
 * Private to delivery/; the contract is dispatcher.h.
 *
 * Threads: timers, HTTP sends and replies run on the loop; store calls, plugin calls,
 * message parsing and spool file I/O run as worker jobs (workers.h). Every job is in the
 * dispatcher's live list from creation to its end, so that ewtp_dispatcher_free() (after
 * ewtp_workers_free(), which runs no more done callbacks) can free what was in flight.
 * A job holds a reference on the generation current when it started.
 */
#ifndef EWTP_DELIVERY_INT_H
#define EWTP_DELIVERY_INT_H

#include "daemon.h"
#include "dispatcher.h"
#include "gen.h"
#include "hostctx.h"
#include "reload.h"
#include "store.h"
#include "workers.h"
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <ewtp/errors.h>

#include "amqp_transport.h"
#include "backoff.h"
#include "batch.h"
#include "runner.h"
#include "store.h"
#include "util.h"
#include "httpc.h"
#include "instance_key.h"
#include "transport.h"
#include "webhooks.h"

#define CLAIM_MAX 64
#define POLL_MAX 32
#define OP_CLAIM_MAX 8
#define INBOUND_MAX_BYTES (16u << 20)
#define SPOOL_UNMATCHED_KEEP_MS (10 * 60 * 1000)

#define PLUGIN_HAS(p, m)                                                                           \
    ((p)->size >= offsetof(struct ewtp_plugin, m) + sizeof((p)->m) && (p)->m != NULL)

/* J_CANCELREQ answers POST /cancel by recording the operation; J_CANCEL delivers a claimed
 * one (store.h, "operations on a message"). */
enum job_kind {
    J_CLAIM,
    J_DELIVER,
    J_POLLCLAIM,
    J_POLL,
    J_CANCELREQ,
    J_CANCEL,
    J_INBOUND,
    J_SPOOL,
    J_LOGIN /* a plugin-built login (ABI 1.3): built on a worker, sent, read on the loop */
};

struct job {
    uint64_t started_us; /* when the attempt began (delivery latency metric) */
    struct job *next, *prev;
    struct ewtp_dispatcher *ds;
    enum job_kind kind;
    struct ewtp_gen *gen;
    const struct ewtp_gen_instance *gi;
    struct ewtp_store_msg *msgs;
    size_t n;
    struct ewtp_arena *arena;
    struct ewtp_message **owned; /* parsed messages (own and related) to free */
    size_t n_owned, cap_owned;
    struct ewtp_call *calls;
    const struct ewtp_call **callp;
    int64_t *chain_number;
    const struct ewtp_request *const *reqs;
    size_t n_reqs, next_req;
    char *auth_header;
    struct job *auth_next; /* waiting for its instance's token */
    struct token *token;   /* J_LOGIN: the token it fetches */
    size_t split;          /* deliver_prepare: send nothing, deliver in this many pieces */
    struct ewtp_httpc_resp *resp;
    bool send;                           /* after the worker step: send reqs from the loop */
    const struct ewtp_transport_ops *tp; /* how reqs go out (transport.h) */
    /* cancel and inbound */
    char *tenant, *id, *reason, *instance;
    ewtpd_reply_fn reply;
    void *reply_arg;
    int status; /* J_LOGIN: the plugin's return code */
    /* the answer to the API (ewtp_dispatch_reply): result, sentence, plugin errors, id */
    enum ewtp_dispatch_result res;
    char *res_text;
    struct ewtp_errors *res_errs;
    char *res_id;
    enum ewtp_store_state res_state;
    struct ewtp_header *hdrs;
    size_t n_hdrs;
    void *data;
    size_t len;
    /* J_CANCEL: the operation and the attempt its lease is for */
    uint64_t op_id;
    uint32_t op_attempt;
    int64_t op_created;
    /* J_CLAIM: operations claimed with the messages */
    struct ewtp_store_op *ops;
    size_t n_ops;
};

struct ewtp_dispatcher {
    struct ewtpd *d;
    struct event *scan_ev, *kick_ev;
    struct ewtp_httpc *tr;
    struct ewtp_webhooks *wh;
    char owner[128];
    bool stopped, claiming, polling, spooling;
    struct ewtp_amqp_pool *amqp; /* broker connections of "amqp" instances (amqp_transport.h) */
    bool amqp_fetching;
    bool evidence_purging;       /* the evidence retention purge runs on a worker */
    int64_t next_evidence_purge; /* loop thread: when the next purge is due */
    size_t in_flight;
    struct job *jobs;
    /* When claim_work next returns expired leases to the queue. Atomic: claim_work runs on
     * worker threads, and a claim and a poll (or two claims) may run at once. */
    _Atomic int64_t next_requeue;
    struct token *tokens;
    struct held *held;
};

/* Claimed messages of one (instance, batch key) waiting for their batch to fill up or for
 * the plugin's maximum wait (batch.h). Their leases run meanwhile; a held message that is
 * lost at shutdown is sent again when its lease expires. Loop thread only. */
struct held {
    struct held *next;
    struct ewtp_dispatcher *ds;
    char *instance, *key;
    struct ewtp_store_msg *msgs;
    size_t n, cap;
    int64_t since; /* when the oldest was claimed */
    struct event *timer;
};

/* A bearer token of an instance (OAuth2 client credentials, JSON login or the plugin's login),
 * fetched by the host and cached until shortly before it expires, or until the authority answers
 * 401. One per instance: an instance is one client (and, for MyInvois intermediaries, one
 * represented taxpayer through auth.onbehalfof). Loop thread only. */
struct token {
    struct token *next;
    struct ewtp_dispatcher *ds;
    char *instance;
    char *conf_id; /* what the token was fetched with: a reload that changes it refetches */
    char *value;   /* "Bearer ..." */
    int64_t expires_at;
    int64_t refresh_at; /* when the next request fetches a new one (before expires_at) */
    bool fetching;
    struct job *waiting;
};

/* The evidence of one message's delivery attempt (dsp_attempt_evidence()): n entries at e whose
 * names and meta texts are owned by texts; the bodies point into the job's requests and
 * answer, which outlive it. */
struct attempt_evidence {
    struct ewtp_store_evidence *e;
    char **texts; /* 2 per entry: meta, name */
    size_t n;
};

/* ---- shared between the dispatcher's files ------------------------------------------------ */

/* jobs.c */
/* The plugin's batch limits (a pointer in the descriptor; NULL: no batching). */
const struct ewtp_batch_limits *dsp_batch_of(const struct ewtp_plugin *p);

size_t dsp_batch_max_documents(const struct ewtp_plugin *p);

/* n outcomes, each with the host's size, as the array of pointers interpret_batch takes. */
struct ewtp_outcome **dsp_outcomes_new(struct ewtp_arena *a, size_t n);

/* Host header arrays as the plugin ABI's arrays of pointers to sized copies (arena a). */
const struct ewtp_header *const *dsp_header_ptrs(struct ewtp_arena *a, const struct ewtp_header *h,
                                                 size_t n);

struct job *dsp_job_new(struct ewtp_dispatcher *ds, enum job_kind kind);

void dsp_job_free(struct job *j);

struct ewtp_store *dsp_store_of(struct job *j);

const struct ewtp_delivery_conf *dsp_policy_conf(struct job *j);

struct ewtp_backoff_policy dsp_policy(struct job *j);

/* A state change was recorded and the store queued its webhook in the same transaction
 * (.webhook of the outcome or receipt): have the webhooks look at the outbox now. */
void dsp_hooks_kick(struct job *j);

int dsp_own(struct job *j, struct ewtp_message *m);

/* Parses stored canonical JSON (valid at accept, so errors here mean a plugin set changed). */
struct ewtp_message *dsp_parse_stored(struct job *j, const struct ewtp_store_msg *m);

/* A JSON array of one error entry (malloc'd). */
char *dsp_one_error(const char *pointer, const char *code, const char *message, const char *cause);

/* The "errors" array of an ewtp_errors list (malloc'd). */
char *dsp_errors_array(const struct ewtp_errors *e);

/* Sets the job's answer to the API: res and a sentence (fmt may be NULL). Returns res. */
enum ewtp_dispatch_result dsp_result(struct job *j, enum ewtp_dispatch_result res, const char *fmt,
                                     ...) __attribute__((format(printf, 3, 4)));

void dsp_call_init(struct job *j, struct ewtp_call *c, const struct ewtp_store_msg *m,
                   const struct ewtp_message *msg, enum ewtp_op op, int64_t now);

/* Related messages of c (relation keys from classify), parsed into the job. Fails closed: a
 * negative code when the store or memory failed (the message is not translated without them). */
int dsp_add_related(struct job *j, struct ewtp_call *c, const struct ewtp_store_msg *m);

void dsp_read_auth(struct job *j);

/* record.c */
void dsp_attempt_evidence_free(struct attempt_evidence *a);

/* Records the outcome of attempt m->attempts of m, with what follows: poll schedule, chain,
 * webhook. o->verdict RETRY goes through the backoff. ev (NULL when nothing was sent): the
 * attempt's evidence, committed in the outcome's own transaction. */
void dsp_record_delivery(struct job *j, const struct ewtp_store_msg *m,
                         const struct ewtp_outcome *o, int64_t chain_number,
                         const struct ewtp_httpc_resp *resp, unsigned req_index,
                         const char *errors_json, const struct attempt_evidence *ev, int64_t now);

/* A failure before anything was sent. */
void dsp_record_local(struct job *j, const struct ewtp_store_msg *m, enum ewtp_verdict v,
                      const char *code, const char *text, const char *errors_json);

/* A receipt (poll, inbound, cancel answer) for m: 0 once recorded, or the store's error
 * (logged; the receipt is then not recorded, and its source must keep it). */
int dsp_record_receipt(struct job *j, const struct ewtp_store_msg *m, const struct ewtp_outcome *o,
                       enum ewtp_op op, const void *raw, size_t raw_len, const char *source,
                       int64_t now);

/* deliver.c */
void dsp_deliver_prepare(void *arg);

/* Ends attempt op_attempt of a J_CANCEL job's operation (fenced by its lease in the store). */
void dsp_op_end(struct job *j, enum ewtp_store_op_end end, int64_t next_at, const char *code,
                const char *message, int64_t now);

/* A transient failure of the cancel: again after the delivery policy's backoff, or given up
 * when its attempts or age are used up. */
void dsp_op_retry(struct job *j, const char *code, const char *message, int64_t retry_after_ms,
                  int64_t now);

/* Worker, J_DELIVER: the evidence of this attempt of message i (store.h, issue 18): each
 * request body exactly as sent (after signing) with its endpoint, and the answer with the
 * peer it came from (https: the server certificate's SHA-256; spool: the folder; amqp: the
 * exchange and routing key), into *a for the message's outcome (record_delivery), which
 * commits them in one transaction. Nothing (a->n == 0) when nothing was sent or memory ran
 * out; free with dsp_attempt_evidence_free(). */
void dsp_attempt_evidence(struct job *j, size_t i, const struct ewtp_httpc_resp *tr, int64_t now,
                          struct attempt_evidence *a);

void dsp_job_end(struct job *j);

void dsp_submit(struct job *j, ewtp_work_fn work, ewtp_work_fn done);

void dsp_on_answer(void *arg, struct ewtp_httpc_resp *resp);

/* Loop: the next request on a transport that sends from the loop (https). */
void dsp_send_next(struct job *j);

/* Worker, after the job's requests are built: a blocking transport sends now; the others
 * from the loop once the worker step is done (dsp_prepared). */
void dsp_transport_start(struct job *j);

void dsp_prepared(void *arg);

/* tokens.c */
void dsp_token_free(struct token *t);

/* The authority refused j's token (401): the next request of the instance logs in again
 * rather than reusing it until it expires. */
void dsp_token_refused(struct job *j);

/* True when j must wait for its instance's token (it is queued and sent later). */
bool dsp_need_token(struct job *j);

/* claim.c */
void dsp_start_one(struct ewtp_dispatcher *ds, enum job_kind kind, struct ewtp_gen *gen,
                   struct ewtp_store_msg *msgs, size_t n);

void dsp_held_free(struct held *h);

/* Moves *m into the batch held for its (instance, batch key); sends the batch when it is full
 * or has no time left to wait. */
void dsp_hold(struct ewtp_dispatcher *ds, const struct ewtp_gen_instance *gi,
              struct ewtp_store_msg *m, int64_t lease_ms);

void dsp_claim(struct ewtp_dispatcher *ds, enum job_kind kind);

/* inbound.c */
/* A job that answers an API request through reply, holding the current generation; NULL
 * (after answering 503) when the dispatcher is not running. */
struct job *dsp_reply_job(struct ewtpd *d, enum job_kind kind, ewtpd_reply_fn reply, void *arg);

/* Queues work for a reply_job; answers 503 instead when the job could not be filled in
 * (!filled: out of memory) or queued. */
void dsp_reply_submit(struct ewtpd *d, struct job *j, bool filled, ewtp_work_fn work);

/* Starts an inbound scan (spool folders, AMQP queues) on the workers; *busy stays set until
 * its done clears it. */
void dsp_scan_start(struct ewtp_dispatcher *ds, ewtp_work_fn work, ewtp_work_fn done, bool *busy);

void dsp_spool_scan(struct ewtp_dispatcher *ds);

void dsp_amqp_scan(struct ewtp_dispatcher *ds);

/* cancel.c */
/* Moves a claimed operation into a J_CANCEL job of its own. */
void dsp_start_cancel(struct ewtp_dispatcher *ds, struct ewtp_gen *gen, struct ewtp_store_op *op);

#endif
