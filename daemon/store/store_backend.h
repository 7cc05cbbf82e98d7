/* store_backend.h — what a store backend implements (private to daemon/store*.c).
 *
 * store.c owns the neutral parts: the struct ewtp_store, the accept queue and its writer
 * thread (group commit), argument checks and the public wrappers. A backend fills a
 * struct ewtp_store_ops and hands it with its private state to ewtp_store_new().
 *
 * Threads: the batch_* operations are called only from the writer thread, in the order
 * begin, accept..., commit (or rollback), and must use a connection of their own. Every
 * other operation may be called from any thread at once; the backend serialises them.
 * Arguments reaching a backend are already checked by store.c (non-NULL where required,
 * JSON texts parsed, now resolved to a real time).
 */
#ifndef EWTP_STORE_BACKEND_H
#define EWTP_STORE_BACKEND_H

#include "store.h"

#include <time.h>

struct ewtp_store_ops {
    const char *name; /* "sqlite" */

    /* Group commit, writer thread only. batch_accept decides NEW/REPEAT/CONFLICT inside the
     * open transaction; on a negative return that accept left nothing behind (the backend
     * undoes its partial work) and the batch goes on. */
    int (*batch_begin)(void *impl);
    int (*batch_accept)(void *impl, const struct ewtp_store_accept_req *req,
                        enum ewtp_store_accept_result *result, enum ewtp_store_state *state);
    int (*batch_commit)(void *impl);
    void (*batch_rollback)(void *impl);

    int (*get)(void *impl, const char *tenant, const char *id, struct ewtp_store_msg **out);
    /* Rows for the API (store.h); the backend renders no JSON of its own. */
    int (*status_get)(void *impl, const char *tenant, const char *id,
                      struct ewtp_store_status **out);
    int (*events)(void *impl, const char *tenant, const char *id, struct ewtp_store_event **out,
                  size_t *n);
    int (*list)(void *impl, const struct ewtp_store_filter *f, struct ewtp_store_page *out);
    int (*claim_due)(void *impl, int64_t now, size_t limit, int64_t lease_ms, const char *owner,
                     struct ewtp_store_msg **out, size_t *n);
    int (*requeue_expired)(void *impl, int64_t now, size_t *n);
    int (*record_outcome)(void *impl, const struct ewtp_store_outcome *o);
    int (*record_receipt)(void *impl, const struct ewtp_store_receipt_rec *r);
    /* Optional (store.h ewtp_store_durable_defer/_end): NULL when every commit is durable. */
    void (*durable_defer)(void *impl);
    int (*durable_end)(void *impl);
    int (*find_by_authority_ref)(void *impl, const char *plugin, const char *ref,
                                 struct ewtp_store_msg **out);
    int (*add_event)(void *impl, uint64_t key, const char *type, uint32_t attempt,
                     const char *detail, int64_t now);
    int (*replay)(void *impl, const char *tenant, const char *id, int64_t now);
    int (*retry_now)(void *impl, const char *tenant, const char *id, int64_t now);
    int (*chain_get)(void *impl, const char *key, int64_t *number, char **ref);
    int (*chain_set)(void *impl, const char *key, int64_t last, const char *ref, int64_t now);
    int (*key_state_get)(void *impl, const char *key, void **data, size_t *len);
    int (*related)(void *impl, const char *const *keys, size_t n, const char *exclude_tenant,
                   const char *exclude_id, struct ewtp_store_msg **out, size_t *n_out);
    int (*counts)(void *impl, struct ewtp_store_count **out, size_t *n);
    int (*backlog)(void *impl, int64_t now, uint64_t *depth, int64_t *oldest_age_ms);
    /* Receipt polling (store.h ewtp_store_claim_poll / ewtp_store_poll_schedule). */
    int (*claim_poll)(void *impl, int64_t now, size_t limit, int64_t next_at,
                      struct ewtp_store_msg **out, size_t *n);
    int (*poll_schedule)(void *impl, uint64_t key, int64_t at);

    /* Webhook outbox (store.h). */
    int (*webhook_enqueue)(void *impl, uint64_t key, enum ewtp_store_state state, int64_t at,
                           int64_t now);
    int (*webhook_claim)(void *impl, int64_t now, size_t limit, int64_t lease_ms,
                         struct ewtp_store_webhook **out, size_t *n);
    int (*webhook_done)(void *impl, uint64_t wid);
    int (*webhook_retry)(void *impl, uint64_t wid, int64_t next_at, const char *error);
    int (*webhook_give_up)(void *impl, uint64_t wid, const char *error, int64_t now);
    int (*webhook_pending)(void *impl, uint64_t *n);

    /* Operations on a message (store.h). */
    int (*op_request)(void *impl, const char *tenant, const char *id, const char *op,
                      const char *reason, int64_t now, bool *repeat, enum ewtp_store_state *state);
    int (*op_claim)(void *impl, int64_t now, size_t limit, int64_t lease_ms, const char *owner,
                    struct ewtp_store_op **out, size_t *n);
    int (*op_finish)(void *impl, uint64_t oid, uint32_t attempt, enum ewtp_store_op_end end,
                     int64_t next_at, const char *detail, int64_t now);
    int (*ops_pending)(void *impl, uint64_t *n);

    /* Evidence (store.h); optional: NULL in a backend without it (-EWTP_EUNSUPP). */
    int (*evidence_add)(void *impl, uint64_t key, const struct ewtp_store_evidence *e, size_t n,
                        int64_t now);
    int (*evidence_get)(void *impl, const char *tenant, const char *id,
                        struct ewtp_store_evidence_row **out, size_t *n);
    int (*evidence_purge)(void *impl, int64_t before, uint64_t *n);
    int (*evidence_bytes)(void *impl, uint64_t *bytes);

    /* The instance secret (store.h ewtp_store_instance_key): the stored one, or fresh stored
     * now when there is none yet (in one transaction, so that nodes sharing the store agree),
     * into out. */
    int (*instance_key)(void *impl, const unsigned char fresh[32], unsigned char out[32]);

    /* Frees impl; called after the writer thread stopped. */
    void (*close)(void *impl);
};

/* Wraps a backend: starts the writer thread. Takes impl: on failure ops->close(impl) has
 * been called. 0 and *out, or a negative code (and *why when why is not NULL). */
int ewtp_store_new(const struct ewtp_store_ops *ops, void *impl, const struct ewtp_store_opts *opts,
                   struct ewtp_store **out, char **why);

/* now when > 0, else CLOCK_REALTIME in ms. */
int64_t ewtp_store_clock(int64_t now);
/* RFC 3339 UTC with milliseconds, "2026-11-22T02:00:00.000Z", into buf (at least 32 bytes). */
const char *ewtp_store_fmt_time(char *buf, size_t size, int64_t ms);
/* malloc'd printf; NULL when out of memory. */
char *ewtp_store_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
