/* store.h — the durable message store of ewtpd (backend-neutral contract).
 *
 * One interface, several backends: ewtp_store_open_sqlite() today (store_sqlite.c), a
 * PostgreSQL backend later behind the same functions. A struct ewtp_store is opaque; inside
 * it is an ops table filled by the backend (store_backend.h), so nothing here names SQLite.
 *
 * What it keeps, per message (unique on tenant + id): the canonical JSON text and its
 * SHA-256 (both computed by the caller), the original body, routing (kind, destination,
 * plugin instance), the state machine of DESIGN.md (accepted -> delivering -> submitted ->
 * approved | rejected | cancelled; retrying; dead), attempts, the authority's reference,
 * receipts, errors and an append-only event log; per ordering key a chain position.
 *
 * Durability: ewtp_store_accept_async()/_wait() report success only after the row is
 * committed to stable storage (SQLite: WAL + synchronous=FULL). Accepts are group committed:
 * one writer thread drains the queue of pending accepts and commits each batch in a single
 * transaction (one fsync), then calls every callback of that batch. Every other operation
 * is one transaction of its own and is committed when the call returns.
 *
 * Times are int64 milliseconds since the Unix epoch everywhere in this API and in the
 * database; JSON output carries RFC 3339 UTC ("2026-11-22T02:00:00.000Z"). Callers pass
 * `now` explicitly (the daemon owns the clock); now <= 0 means "read CLOCK_REALTIME".
 *
 * Threads: every function is thread-safe. Non-accept operations are serialised on one
 * connection; accepts run on the writer thread's own connection. Accept callbacks run on
 * the writer thread: they must be quick and must not call ewtp_store_accept_wait() or
 * ewtp_store_close() (the daemon bounces them to its event loop). Other store calls from a
 * callback are allowed.
 *
 * Errors: 0 or a negative EWTP_E* code. -EWTP_ENOTFOUND: no such message (or another
 * tenant's); -EWTP_EINVAL: bad argument or an operation the message's state does not allow
 * (e.g. an outcome for a lease that was lost); -EWTP_ERANGE: a chain advance out of
 * sequence; -EWTP_EIO: the database failed (or the store is closing); -EWTP_ENOMEM.
 * A failed call changes nothing (its transaction is rolled back).
 */
#ifndef EWTP_STORE_H
#define EWTP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ewtp_store;

enum ewtp_store_state {
    EWTP_STORE_ACCEPTED = 0, /* durable here, waiting for the dispatcher */
    EWTP_STORE_DELIVERING,   /* claimed under a lease */
    EWTP_STORE_SUBMITTED,    /* the authority acknowledged receipt */
    EWTP_STORE_APPROVED,     /* terminal */
    EWTP_STORE_REJECTED,     /* terminal */
    EWTP_STORE_RETRYING,     /* transient failure; due again at next_attempt_at */
    EWTP_STORE_DEAD,         /* gave up; an admin may replay it */
    EWTP_STORE_CANCELLED,    /* terminal: the authority confirmed a cancellation */
    EWTP_STORE_STATE_COUNT,
};

/* "accepted" ... "cancelled" (the spec's words); NULL for an invalid value. */
const char *ewtp_store_state_name(enum ewtp_store_state s);
/* 0 and *out, or -EWTP_EINVAL when name is not a state. */
int ewtp_store_state_from_name(const char *name, enum ewtp_store_state *out);
/* approved, rejected, cancelled. */
bool ewtp_store_state_terminal(enum ewtp_store_state s);

struct ewtp_store_opts {
    int busy_timeout_ms; /* waiting for the other connection's lock; 0: 5000 */
    size_t max_batch;    /* most accepts per group commit; 0: 1024 */
    size_t max_queue;    /* pending accepts before accept_async refuses (-EWTP_EIO); 0: 65536 */
    /* Called on the writer thread after each group commit with its duration (metrics). */
    void (*on_commit)(void *arg, uint64_t commit_us, size_t accepts);
    void *on_commit_arg;
};

/* Opens (creating if needed) the SQLite database at path with WAL, synchronous=FULL,
 * foreign_keys and busy_timeout; creates or checks the schema (a database with a newer
 * schema version is refused) and starts the writer thread. opts may be NULL (defaults).
 * 0 and *out (caller closes), or a negative code and *why (malloc'd sentence naming the
 * file and the reason; caller frees). why may be NULL. */
int ewtp_store_open_sqlite(const char *path, const struct ewtp_store_opts *opts,
                           struct ewtp_store **out, char **why);

/* Opens the PostgreSQL store described by the libpq connection string conninfo (store_pg.c):
 * one connection for the writer thread and pool_size (0: 4) for everything else; applies
 * the schema migrations this database lacks (under an advisory lock, so that nodes starting
 * together take turns) and refuses a newer schema. Several ewtpd nodes may share the
 * database. Returns as ewtp_store_open_sqlite(). */
int ewtp_store_open_pg(const char *conninfo, size_t pool_size, const struct ewtp_store_opts *opts,
                       struct ewtp_store **out, char **why);
/* Checks that conninfo parses as a libpq connection string (PQconninfoParse; no server
 * needed). 0, or -EWTP_EINVAL and *why (malloc'd sentence; may be NULL). */
int ewtp_store_pg_conninfo_check(const char *conninfo, char **why);
/* Reads the connection string of a conninfo file (trailing whitespace dropped) and checks it:
 * 0 and *conninfo (malloc'd; it may hold a password: the caller frees it), or a negative code
 * and *why. */
int ewtp_store_pg_conninfo_read(const char *file, char **conninfo, char **why);
/* ewtpctl migrate-store: copies every table of the SQLite store at path (schema version 5 to 7,
 * read in one snapshot) into the PostgreSQL database of conninfo, creating its schema, in one
 * transaction; the ids (seq, eid ...) and so the accept order are kept and the sequences
 * continue after them. The evidence (version 7) is copied too, unless without_evidence, which
 * leaves it in the file (*evidence_left says how many rows). A target that already holds
 * messages, chains or key states is refused (-EWTP_EINVAL). 0 and *rows (rows copied), or a
 * negative code and *why. Run with ewtpd stopped. */
int ewtp_store_pg_import_sqlite(const char *path, const char *conninfo, bool without_evidence,
                                uint64_t *rows, uint64_t *evidence_left, char **why);

/* Refuses new accepts, commits every queued one (their callbacks fire), stops the writer
 * thread and closes the database. NULL is a no-op. No other call may be running or follow. */
void ewtp_store_close(struct ewtp_store *st);

/* ---- accept (group committed) ---------------------------------------------------------- */

struct ewtp_store_accept_req {
    const char *tenant;      /* required */
    const char *id;          /* required: the sender's id, unique within the tenant */
    const char *kind;        /* required: "order", ... */
    const char *destination; /* required: country code */
    const char *plugin;      /* required: plugin instance name serving the message */
    const char *canonical;   /* required: canonical JSON text (sorted keys, compact) */
    size_t canonical_len;    /* 0: strlen(canonical) */
    const char *hash;        /* required: SHA-256 hex of canonical; decides REPEAT/CONFLICT */
    const void *body;        /* the original body as received (audit); may be NULL */
    size_t body_len;
    const char *ordering_key;     /* NULL: unordered */
    const char *const *relations; /* relation keys (e.g. "order:SO-1001"), may be NULL */
    size_t n_relations;
    const char *batch_key; /* NULL: none */
    bool needs_chain;      /* the plugin numbers submissions per ordering key */
    const char *warnings;  /* JSON array of the spec's error entries (warnings), or NULL */
    int64_t now;           /* created_at and first next_attempt_at; <= 0: the clock */
    /* Waiting for another message (DECISIONS "Waiting for another message"): not claimed
     * until a message with relation key wait_key is in wait_state (SUBMITTED: has reached
     * submitted or approved; APPROVED: approved), or is rejected/cancelled, or wait_until
     * (ms since the epoch) has passed. NULL: no wait. */
    const char *wait_key;
    enum ewtp_store_state wait_state;
    int64_t wait_until;
};

enum ewtp_store_accept_result {
    EWTP_STORE_NEW = 0, /* stored now, state accepted */
    EWTP_STORE_REPEAT,  /* same tenant+id and same hash: nothing stored; state is current */
    EWTP_STORE_CONFLICT /* same tenant+id, different hash: nothing stored */
};

/* Called exactly once per queued accept, on the writer thread, after the batch holding it
 * committed (or failed: rc < 0, nothing of it stored). result/state are valid when rc == 0;
 * state is the message's current state (accepted for NEW). */
typedef void (*ewtp_store_accept_fn)(void *arg, int rc, enum ewtp_store_accept_result result,
                                     enum ewtp_store_state state);

/* Queues an accept. req and everything it points to are copied: the caller may free them
 * when this returns. 0: cb will be called exactly once. Negative (-EWTP_EINVAL for a
 * missing field or warnings that are not a JSON array, -EWTP_EIO when closing or the queue
 * is full, -EWTP_ENOMEM): cb will not be called. */
int ewtp_store_accept_async(struct ewtp_store *st, const struct ewtp_store_accept_req *req,
                            ewtp_store_accept_fn cb, void *arg);

/* Blocking form: returns when the accept is committed (or failed). 0 and *result, *state
 * (either may be NULL), or a negative code. Must not be called from an accept callback. */
int ewtp_store_accept_wait(struct ewtp_store *st, const struct ewtp_store_accept_req *req,
                           enum ewtp_store_accept_result *result, enum ewtp_store_state *state);

struct ewtp_store_stats {
    uint64_t accepts; /* accepts processed by the writer (any result) */
    uint64_t batches; /* group-commit transactions committed */
    uint64_t failed;  /* batches that failed and were rolled back */
    size_t max_batch; /* largest batch committed */
    size_t queued;    /* accepts waiting now */
};
void ewtp_store_stats(struct ewtp_store *st, struct ewtp_store_stats *out);

/* ---- reading ---------------------------------------------------------------------------- */

/* A message as the dispatcher and the plugins see it. All strings are malloc'd and owned
 * by the struct (NULL when absent); free with ewtp_store_msgs_free(). */
struct ewtp_store_msg {
    uint64_t key; /* the store's own id of the message: used by the dispatcher operations */
    char *tenant;
    char *id;
    char *kind;
    char *destination;
    char *plugin;
    enum ewtp_store_state state;
    uint32_t attempts;       /* attempts started (a claim counts one) */
    int64_t next_attempt_at; /* 0 when not due at all (not accepted/retrying) */
    char *authority_ref;
    char *canonical; /* NUL-terminated; canonical_len bytes */
    size_t canonical_len;
    char *hash;
    char *ordering_key;
    char *batch_key;
    bool needs_chain;
    char *lease_owner;
    int64_t lease_until;
    int64_t created_at;
    int64_t updated_at;
    char *wait_key; /* NULL: waits for nothing (see ewtp_store_accept_req) */
    enum ewtp_store_state wait_state;
    int64_t wait_until;
};
void ewtp_store_msgs_free(struct ewtp_store_msg *msgs, size_t n);

/* The message tenant/id into *out (one element; caller frees with ewtp_store_msgs_free(out,
 * 1)). -EWTP_ENOTFOUND when there is none for this tenant. */
int ewtp_store_get(struct ewtp_store *st, const char *tenant, const char *id,
                   struct ewtp_store_msg **out);

/* What the API shows of a message (rendered as JSON by api_json.h, never by a backend).
 * Strings are malloc'd and owned by the row. */
struct ewtp_store_receipt_row {
    int64_t at;
    char *state;   /* the state the receipt announced */
    char *code;    /* the authority's code, or NULL */
    char *message; /* the authority's text, or NULL */
};
struct ewtp_store_status {
    char *tenant;
    char *id;
    char *kind;
    char *destination;
    char *plugin;
    enum ewtp_store_state state;
    int64_t attempts;
    int64_t next_attempt_at; /* meaningful while accepted or retrying */
    char *authority_ref;     /* NULL when none */
    char *warnings;          /* JSON array text: the warnings given at accept, or NULL */
    char *errors;            /* JSON array text: the last outcome's errors, or NULL */
    struct ewtp_store_receipt_row *receipts; /* oldest first */
    size_t n_receipts;
    int64_t created_at;
    int64_t updated_at;
};
/* Frees an array of n status rows (and their receipts). */
void ewtp_store_status_free(struct ewtp_store_status *s, size_t n);

/* The status row of tenant/id with its receipts, read from one snapshot, into *out (one
 * element; ewtp_store_status_free(out, 1)). -EWTP_ENOTFOUND for another tenant's or an
 * unknown id. */
int ewtp_store_status_get(struct ewtp_store *st, const char *tenant, const char *id,
                          struct ewtp_store_status **out);

/* One event of a message's log. type is "accepted", "claimed", "outcome", "receipt",
 * "lease_expired", "replay", "retry_now" or one given to ewtp_store_add_event(); state is
 * the message's state after the event; detail is a JSON object text (the authority's raw
 * answer is detail.raw, or detail.raw_base64 when it is not UTF-8) or NULL. */
struct ewtp_store_event {
    int64_t at;
    char *type;
    char *state;
    int64_t attempt;
    char *detail;
};
void ewtp_store_events_free(struct ewtp_store_event *e, size_t n);
/* The events of tenant/id, oldest first: *out a malloc'd array of *n (NULL when 0). */
int ewtp_store_events(struct ewtp_store *st, const char *tenant, const char *id,
                      struct ewtp_store_event **out, size_t *n);

struct ewtp_store_filter {
    const char *tenant;      /* NULL: every tenant (admin) */
    const char *state;       /* NULL: any; otherwise a state name (-EWTP_EINVAL if unknown) */
    const char *destination; /* NULL: any */
    size_t limit;            /* 0: 100; at most 1000 */
    const char *after;       /* NULL or "": from the start; else a cursor from a previous page */
};
/* One page of a listing: status rows, oldest accepted first, and the cursor of the next page
 * (malloc'd opaque text for ewtp_store_filter.after; NULL when this page reached the end). */
struct ewtp_store_page {
    struct ewtp_store_status *items;
    size_t n;
    char *next;
};
void ewtp_store_page_free(struct ewtp_store_page *p);
/* Fills *out (caller frees with ewtp_store_page_free). A malformed cursor or an unknown state
 * is -EWTP_EINVAL. */
int ewtp_store_list(struct ewtp_store *st, const struct ewtp_store_filter *f,
                    struct ewtp_store_page *out);

/* ---- dispatcher ----------------------------------------------------------------------- */

/* Claims up to limit due messages (state accepted or retrying, next_attempt_at <= now),
 * oldest due first, and moves them to delivering with attempts + 1 and a lease of lease_ms
 * held by owner (event "claimed"). Ordering keys are delivered strictly in accept order, one
 * in flight per key: a message is not claimed while an earlier-accepted message with the
 * same ordering key is accepted, delivering, retrying or dead (a dead message holds its key
 * until replayed). A message that waits for another (wait_key) is claimed only once the wait
 * is decided: the other reached wait_state, failed (rejected, cancelled) or wait_until passed;
 * the caller then decides it with ewtp_store_wait_decide(). *out is a malloc'd array of *n
 * messages (NULL when 0); caller frees with ewtp_store_msgs_free(). */
int ewtp_store_claim_due(struct ewtp_store *st, int64_t now, size_t limit, int64_t lease_ms,
                         const char *owner, struct ewtp_store_msg **out, size_t *n);

enum ewtp_store_wait {
    EWTP_STORE_WAIT_READY = 0, /* no wait, or the other message got there: deliver */
    EWTP_STORE_WAIT_PENDING,   /* still waiting (the other changed since the claim) */
    EWTP_STORE_WAIT_FAILED,    /* the other was rejected or cancelled: reject this one */
    EWTP_STORE_WAIT_TIMEOUT,   /* wait_until passed: reject this one */
};
/* Decides the wait of a claimed message m with the same rule as the claim. For FAILED and
 * TIMEOUT *cause (malloc'd, caller frees) is a sentence for the sender that names the
 * relation key only, never the other message (it may be another tenant's). */
enum ewtp_store_wait ewtp_store_wait_decide(struct ewtp_store *st, const struct ewtp_store_msg *m,
                                            int64_t now, char **cause);

/* ---- operations on a message (cancel) ------------------------------------------------- */

/* An operation requested on a message after its accept (today: "cancel") is a durable job of
 * its own: recorded before the request is answered 202, claimed under a lease, retried with
 * backoff, and ordered after the message it acts on: it is claimed only once the authority
 * has the message (submitted or approved, with its reference), or once the message ended
 * without it (rejected, cancelled: the caller closes the operation). Its history is in the
 * message's events ("cancel_requested", "op_claimed", "op_retry", "op_done", "op_failed"). */
struct ewtp_store_op {
    uint64_t oid;
    char *op;          /* "cancel" */
    char *reason;      /* the sender's reason, or NULL */
    uint32_t attempts; /* started, this claim included */
    int64_t created_at;
    struct ewtp_store_msg msg; /* the message it acts on, as it is now */
};
void ewtp_store_ops_free(struct ewtp_store_op *ops, size_t n);

/* Records op on tenant/id durably with an event "<op>_requested" (detail: reason). *repeat is
 * true when the same operation is already pending for it (nothing new is recorded: a repeated
 * request is answered as the first). -EWTP_ENOTFOUND: no such message of this tenant;
 * -EWTP_EINVAL: the message is rejected or cancelled (*state says which). */
int ewtp_store_op_request(struct ewtp_store *st, const char *tenant, const char *id, const char *op,
                          const char *reason, int64_t now, bool *repeat,
                          enum ewtp_store_state *state);

/* Claims up to limit due operations as described above, leased to owner for lease_ms (event
 * "op_claimed"); *out as for claim (ewtp_store_ops_free). */
int ewtp_store_op_claim(struct ewtp_store *st, int64_t now, size_t limit, int64_t lease_ms,
                        const char *owner, struct ewtp_store_op **out, size_t *n);

enum ewtp_store_op_end {
    EWTP_STORE_OP_DONE = 0, /* the authority answered (its receipt is recorded apart) */
    EWTP_STORE_OP_RETRY,    /* pending again, due at next_at */
    EWTP_STORE_OP_FAILED,   /* given up */
};
/* Ends attempt `attempt` of operation oid (fenced: -EWTP_EINVAL when the lease was lost),
 * with an event "op_done" / "op_retry" / "op_failed" on the message carrying detail (a JSON
 * object or NULL). */
int ewtp_store_op_finish(struct ewtp_store *st, uint64_t oid, uint32_t attempt,
                         enum ewtp_store_op_end end, int64_t next_at, const char *detail,
                         int64_t now);
/* Operations pending or in progress (metrics). */
int ewtp_store_ops_pending(struct ewtp_store *st, uint64_t *n);

/* A lease that expired (its holder crashed or hung) goes back to retrying, due now (event
 * "lease_expired"). Run at startup and periodically. *n (may be NULL): how many. */
int ewtp_store_requeue_expired(struct ewtp_store *st, int64_t now, size_t *n);

/* One answer of the authority, as the plugin translated it. */
struct ewtp_store_receipt {
    enum ewtp_store_state state; /* the state this answer means */
    const char *code;            /* the authority's code, or NULL */
    const char *message;         /* translated text, or NULL */
    const void *raw;             /* the authority's raw answer, or NULL (kept for audit) */
    size_t raw_len;
    int64_t at; /* <= 0: the operation's now */
};

/* Advances the chain of an ordering key in the same transaction: number must be exactly the
 * chain's last number + 1 (1 for a new chain), otherwise -EWTP_ERANGE and nothing is
 * recorded. ref becomes the chain's last authority reference. */
struct ewtp_store_chain_advance {
    const char *key;
    int64_t number;
    const char *ref;
};

struct ewtp_store_outcome {
    uint64_t key;                /* ewtp_store_msg.key */
    uint32_t attempt;            /* the attempt of the claim (fences a lost lease) */
    enum ewtp_store_state state; /* submitted, approved, rejected, retrying, dead, cancelled */
    const char *authority_ref;   /* NULL keeps the current one */
    const struct ewtp_store_receipt *receipt; /* NULL: none */
    int64_t next_attempt_at;                  /* retrying: when it is due again (<= 0: now) */
    /* submitted: its next receipt poll, as ewtp_store_poll_schedule sets it, in the same
     * transaction (0: due now, < 0: never, its decision arrives inbound). */
    int64_t poll_at;
    const char *errors; /* JSON array of error entries; NULL keeps, "[]" clears */
    const char *detail; /* JSON object merged into the event's detail, or NULL */
    const struct ewtp_store_chain_advance *chain; /* NULL: none */
    int64_t now;
    /* Also queue a webhook of the new state in the outbox, in the same transaction (the
     * tenant has a webhook_url): a state change is never committed without its webhook. */
    bool webhook;
    /* Per ordering key okey (plugin ABI 1.2), in the same transaction: the plugin's state blob
     * of okey replaced by key_state_len bytes at key_state when key_state is not NULL (whatever
     * the state), and, when chain_first > 0 and okey has no chain yet, the chain set so that
     * okey's next message gets number chain_first. */
    const char *okey;
    const void *key_state;
    size_t key_state_len;
    int64_t chain_first;
    /* The document's own unique id that the authority's receipts echo (plugin ABI 1.7
     * document_id, as the dispatcher spells it), kept in the same transaction as one more
     * reference of the message, findable with ewtp_store_find_by_authority_ref; NULL: none. */
    const char *doc_ref;
    /* The claim's lease owner (ewtp_store_claim_due's owner), or NULL. When set, the outcome
     * is also fenced by it and by the lease's expiry: only the holder of a lease still valid
     * at now records (PostgreSQL, where several nodes share the store; DECISIONS). */
    const char *owner;
    /* The evidence of this attempt (issue 18: each request as sent, the raw answer, with the
     * endpoint and the TLS peer in meta), n_evidence entries added in the same transaction as
     * the outcome: a crash leaves both or neither, and a fenced (-EWTP_EINVAL) outcome keeps
     * none of them. A backend without evidence ignores them. */
    const struct ewtp_store_evidence *evidence;
    size_t n_evidence;
};
/* Records the result of a delivery attempt: the message must be delivering with attempts ==
 * attempt (otherwise -EWTP_EINVAL: the lease was lost and someone else owns it now). Sets
 * the state, reference, errors, clears the lease, appends the receipt and an "outcome"
 * event, and advances the chain, all in one transaction. */
int ewtp_store_record_outcome(struct ewtp_store *st, const struct ewtp_store_outcome *o);

struct ewtp_store_receipt_rec {
    uint64_t key;                /* the message (see ewtp_store_find_by_authority_ref) */
    bool set_state;              /* false: only record the receipt */
    enum ewtp_store_state state; /* new state when set_state (approved, rejected, ...) */
    const char *authority_ref;   /* NULL keeps the current one */
    const struct ewtp_store_receipt *receipt; /* required */
    const char *detail; /* JSON object merged into the event's detail, or NULL */
    const struct ewtp_store_chain_advance *chain; /* NULL: none */
    int64_t now;
    /* A confirmed cancellation of an approved message: approved -> cancelled is allowed
     * (authorities cancel cleared declarations and validated invoices). Only with state
     * cancelled; every other terminal state stays as it is. */
    bool cancel_confirmed;
    /* JSON array replacing the message's errors when the state changes (a rejection that
     * arrives by callback names the member at fault, as a synchronous one does), or NULL. */
    const char *errors;
    /* Queue a webhook of the new state in the same transaction, when the state changes. */
    bool webhook;
};
/* Records a polled or inbound receipt (event "receipt"). The state changes only when
 * set_state and the message is not terminal yet (a late answer after a terminal state is
 * recorded but does not change it; detail.ignored is true then). A state change releases a
 * lease: a receipt that overtakes its own delivery makes that delivery's record_outcome
 * fail with -EWTP_EINVAL, which the dispatcher treats as "already decided". accepted and
 * retrying make the message due at now. */
int ewtp_store_record_receipt(struct ewtp_store *st, const struct ewtp_store_receipt_rec *r);

/* Durability deferred for a batch of writes of one thread (issue 20: the spool scan recorded
 * its receipts one after another, each waiting for a sync of its own). Between
 * ewtp_store_durable_defer and ewtp_store_durable_end, this thread's write calls return once
 * committed (visible, not yet on stable storage); ewtp_store_durable_end waits for one sync
 * that covers them all and returns 0 once they are durable, or the error (then none of them
 * may be taken as durable). What the caller acknowledges for them (a receipt file moved out of
 * its in-folder) waits for ewtp_store_durable_end. Backends whose every commit is durable
 * return 0 at once. Calls do not nest. */
void ewtp_store_durable_defer(struct ewtp_store *st);
int ewtp_store_durable_end(struct ewtp_store *st);

/* The message of plugin whose authority reference (any it ever had, or a doc_ref) is ref, the
 * newest when several, into *out (one element; ewtp_store_msgs_free(out, 1)); -EWTP_ENOTFOUND
 * when none, and also when messages of more than one tenant hold ref: a receipt is never
 * given to a tenant by guessing (issue 19). */
int ewtp_store_find_by_authority_ref(struct ewtp_store *st, const char *plugin, const char *ref,
                                     struct ewtp_store_msg **out);

/* Appends an event of the caller's type (e.g. "cancel_requested", "webhook_failed") without
 * changing the state. detail: JSON object or NULL. */
int ewtp_store_add_event(struct ewtp_store *st, uint64_t key, const char *type, uint32_t attempt,
                         const char *detail, int64_t now);

/* ---- receipt polling ------------------------------------------------------------------ */

/* A submitted message's next_attempt_at is the time of its next poll: 0 (what
 * record_outcome leaves) means due now, a negative value means never (its decision arrives
 * inbound). Claims up to limit submitted messages whose poll is due (0 <= next <= now),
 * oldest due first, and moves their next poll to next_at in the same transaction, so that
 * two pollers (or two nodes) do not poll one message twice. No event is recorded. *out as
 * for claim_due. */
int ewtp_store_claim_poll(struct ewtp_store *st, int64_t now, size_t limit, int64_t next_at,
                          struct ewtp_store_msg **out, size_t *n);
/* Sets the next poll of a submitted message (at < 0: never). -EWTP_EINVAL when the message
 * is not submitted (any more). */
int ewtp_store_poll_schedule(struct ewtp_store *st, uint64_t key, int64_t at);

/* ---- admin ------------------------------------------------------------------------------ */

/* dead -> accepted, attempts 0, due now, errors cleared, event "replay". -EWTP_EINVAL when
 * the message is not dead. */
int ewtp_store_replay(struct ewtp_store *st, const char *tenant, const char *id, int64_t now);
/* retrying -> due now (event "retry_now"). -EWTP_EINVAL when not retrying. */
int ewtp_store_retry_now(struct ewtp_store *st, const char *tenant, const char *id, int64_t now);

/* ---- chains and relations ------------------------------------------------------------- */

/* The chain of key: *number = last accepted number (0 for none), *ref = its authority
 * reference (malloc'd, caller frees; NULL when none). ref may be NULL. */
int ewtp_store_chain_get(struct ewtp_store *st, const char *key, int64_t *number, char **ref);
/* Sets the chain of key so that its next message gets number (>= 1), prev_ref (may be NULL)
 * being the authority reference of the one before it (ewtpctl chain set): an admin repairing a
 * chain the authority disagrees with, or starting one where the authority's numbering already
 * is. Replaces whatever the chain was; a message of the key in flight keeps the number it was
 * given. 0, -EWTP_EINVAL (empty key, number < 1) or a store error. */
int ewtp_store_chain_set(struct ewtp_store *st, const char *key, int64_t number,
                         const char *prev_ref, int64_t now);
/* The plugin's state blob of ordering key (ABI 1.2 key_state): 0 and *data (malloc'd, the
 * caller frees; NUL-terminated beyond *len), -EWTP_ENOTFOUND when the key has none. */
int ewtp_store_key_state_get(struct ewtp_store *st, const char *key, void **data, size_t *len);

/* Messages of any tenant sharing at least one of keys[0..n), except tenant/id itself
 * (exclude_tenant/exclude_id may be NULL): per key the newest 16 of each tenant (a tenant that
 * floods a key cannot push another's messages out), exclude_tenant's own first, then newest
 * first, at most 100. *out as for claim. */
int ewtp_store_related(struct ewtp_store *st, const char *const *keys, size_t n,
                       const char *exclude_tenant, const char *exclude_id,
                       struct ewtp_store_msg **out, size_t *n_out);

/* ---- webhook outbox ------------------------------------------------------------------- */

/* State changes waiting to be POSTed to the tenant's webhook_url. A row is queued with the
 * state change itself (ewtp_store_outcome.webhook, ewtp_store_receipt_rec.webhook) or by
 * ewtp_store_webhook_enqueue(), and leaves the outbox when it was delivered or given up, so
 * a webhook survives a crash or restart of ewtpd (at least once; the receiver deduplicates
 * on webhook-id, which the sender derives from tenant, id, state and at). */
struct ewtp_store_webhook {
    uint64_t wid;      /* the outbox row */
    uint64_t key;      /* the message (ewtp_store_msg.key) */
    char *tenant;      /* malloc'd */
    char *id;          /* malloc'd */
    char *state;       /* malloc'd: the state name the webhook announces */
    int64_t at;        /* when the state changed */
    uint32_t attempts; /* attempts started, the one of this claim included */
    int64_t created_at;
};
void ewtp_store_webhooks_free(struct ewtp_store_webhook *w, size_t n);

/* Queues a webhook of state for message key (at <= 0: now). */
int ewtp_store_webhook_enqueue(struct ewtp_store *st, uint64_t key, enum ewtp_store_state state,
                               int64_t at, int64_t now);
/* Claims up to limit due webhooks (next attempt <= now), oldest due first: attempts + 1 and
 * the next attempt moved to now + lease_ms in the same transaction, so that a claim whose
 * holder dies is due again after the lease. *out as for claim_due (free with
 * ewtp_store_webhooks_free()). */
int ewtp_store_webhook_claim(struct ewtp_store *st, int64_t now, size_t limit, int64_t lease_ms,
                             struct ewtp_store_webhook **out, size_t *n);
/* Delivered: the row leaves the outbox. -EWTP_ENOTFOUND when it is not there (any more). */
int ewtp_store_webhook_done(struct ewtp_store *st, uint64_t wid);
/* A failed attempt: due again at next_at; error (may be NULL) is kept as the last error. */
int ewtp_store_webhook_retry(struct ewtp_store *st, uint64_t wid, int64_t next_at,
                             const char *error);
/* Given up: the row leaves the outbox and the message gets a "webhook_failed" event whose
 * detail is {"state","attempts","error"}. */
int ewtp_store_webhook_give_up(struct ewtp_store *st, uint64_t wid, const char *error, int64_t now);
/* Webhooks waiting in the outbox (for metrics and tests). */
int ewtp_store_webhook_pending(struct ewtp_store *st, uint64_t *n);

/* ---- counts ----------------------------------------------------------------------------- */

struct ewtp_store_count {
    char *plugin; /* malloc'd */
    enum ewtp_store_state state;
    uint64_t n;
};
/* Messages per plugin and state (only non-zero pairs). Free with ewtp_store_counts_free(). */
int ewtp_store_counts(struct ewtp_store *st, struct ewtp_store_count **out, size_t *n);
void ewtp_store_counts_free(struct ewtp_store_count *c, size_t n);

/* Messages still to deliver (accepted, delivering, retrying) and the age at now of the
 * oldest of them in ms (0 when none). Either pointer may be NULL. */
int ewtp_store_backlog(struct ewtp_store *st, int64_t now, uint64_t *depth, int64_t *oldest_age_ms);

/* ---- the instance secret (issue 19) ----------------------------------------------------------
 * 32 random bytes generated the first time any node asks and kept in the store (a table of its
 * own, created on first use), so that every node sharing the store and every restart gets the
 * same ones. What it keys must be stable for a message yet unguessable without it: the list
 * cursors the API gives out, and the ids plugins derive through the host's instance_mac (China's
 * default copNo). Never logged or shown. 0 and out, or a negative code. Read once, then cached. */
int ewtp_store_instance_key(struct ewtp_store *st, unsigned char out[32]);

/* ---- evidence (issue 18) ------------------------------------------------------------------
 * The exact bytes of what was sent and answered, per message, for its evidence bundle
 * (evidence.h): each request body of each attempt as sent (after signing), with the attempt,
 * the time, the endpoint and the peer (TLS certificate SHA-256, spool folder, AMQP queue) in
 * meta, and the raw answer. Optional in a backend: -EWTP_EUNSUPP ("not supported by this
 * backend") when it has none. */
struct ewtp_store_evidence {
    const char *kind; /* required: "request", "answer" */
    const char *name; /* required: the file name in the bundle, "attempt-1/request-0.xml" */
    const char *meta; /* JSON object text (attempt, endpoint, peer, status ...) or NULL */
    const void *body;
    size_t body_len;
    int64_t at; /* <= 0: now */
};
struct ewtp_store_evidence_row {
    int64_t at;
    char *kind, *name, *meta; /* malloc'd; meta may be NULL */
    unsigned char *body;      /* malloc'd */
    size_t body_len;
};
void ewtp_store_evidence_free(struct ewtp_store_evidence_row *r, size_t n);
/* Adds n entries of message key in one transaction (-EWTP_ENOTFOUND for an unknown key). A
 * delivery attempt's entries go with its outcome instead (ewtp_store_outcome.evidence). */
int ewtp_store_evidence_add(struct ewtp_store *st, uint64_t key,
                            const struct ewtp_store_evidence *e, size_t n);
/* The entries of tenant/id, oldest first (-EWTP_ENOTFOUND for an unknown message). */
int ewtp_store_evidence_get(struct ewtp_store *st, const char *tenant, const char *id,
                            struct ewtp_store_evidence_row **out, size_t *n);
/* Deletes the entries recorded before `before` (ms); *n (may be NULL) gets how many. */
int ewtp_store_evidence_purge(struct ewtp_store *st, int64_t before, uint64_t *n);
/* The bytes of evidence held (bodies and meta, in bytes), for /metrics. */
int ewtp_store_evidence_bytes(struct ewtp_store *st, uint64_t *bytes);

#endif
