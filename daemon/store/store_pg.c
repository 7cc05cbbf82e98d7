/* store_pg.c — the PostgreSQL backend of the message store (see store.h, store_backend.h).
 *
 * Several ewtpd nodes share one database; nothing of the store is cached in a node.
 *
 * Connections. libpq is used synchronously on the calling thread (DECISIONS: the store
 * interface is synchronous; the daemon calls it from worker threads). The writer thread of
 * store.c has a connection of its own for group-committed accepts; every other operation
 * borrows one of pool_size connections (waiting when all are busy) and runs one transaction
 * on it. A connection found broken is reset before it is lent again.
 *
 * Schema. Versioned migrations (schema_version table) run at open inside one transaction
 * that first takes a transaction-level advisory lock: two nodes starting together apply them
 * one after the other, the second finding nothing to do. A database with a newer version is
 * refused.
 *
 * Accepts. One transaction per batch (one WAL flush); each accept is one round trip holding a
 * savepoint, the INSERT ... ON CONFLICT (tenant, id) DO NOTHING with its relations and event,
 * and the savepoint's release, so that a failed accept leaves nothing and the batch goes on.
 * The unique (tenant, id) decides NEW / REPEAT / CONFLICT across nodes: the second of two
 * nodes inserting the same id waits for the first's commit and then finds its row.
 *
 * Claims. Due messages are selected and locked with FOR UPDATE SKIP LOCKED, so that nodes
 * claiming at the same time take different rows, and leased (owner + until). Ordering keys
 * (no two nodes send the same key at once, in accept order) — how:
 *  - a message may be sent only when no other live message of its key (accepted,
 *    delivering, retrying, dead) has a smaller seq, and no message of its key is delivering
 *    at all. The second rule matters because seq is taken at INSERT, not at commit: two
 *    nodes' writers may commit seq 101 before seq 100, and a claim that saw only 101 must
 *    keep 100 back while 101 is in flight. (The messages of a key are then sent in commit
 *    order, which is the only order two concurrent accepts have.)
 *  - candidates are the due messages not flagged blocked (schema_v2: the flag says "a live
 *    message of the key is before me", kept up to date under a second per-key lock, so that
 *    a claim does not walk a busy key's backlog). The flag is an index, not the proof:
 *  - the candidate select runs on a snapshot that can be stale by the time its rows are
 *    locked; so each candidate with a key takes a transaction-level advisory lock on the
 *    key (pg_try_advisory_xact_lock on a hash of it: a key being claimed by another node is
 *    skipped until the next scan) and re-checks the two rules above with a fresh statement
 *    (READ COMMITTED: a new snapshot, taken after the lock, so it sees every claim of the key
 *    committed before). Claims of one key are thereby serialised and the rules hold whatever
 *    the flags say; outcomes take no claim lock (they only make a key's next message
 *    eligible).
 * The nodes' clocks must agree to well within the lease (leases are written and expired by
 * different nodes' clocks).
 * Lease fencing: an outcome is recorded only by the holder of the attempt's lease while it is
 * valid: UPDATE ... WHERE state = 'delivering' AND attempts = $attempt AND lease_owner = $me
 * AND lease_until > $now. A node whose lease lapsed (it hung, or it was taken over) records
 * nothing; the takeover's attempt resends (the authority's idempotency answers it).
 * Expired leases are requeued by any node (FOR UPDATE SKIP LOCKED). Chain counters advance in
 * the outcome's transaction with number = last + 1 checked in the UPDATE's WHERE under its
 * row lock (a concurrent advance finds the new number and fails -EWTP_ERANGE).
 */
#include "store_backend.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <ewtp/errors.h>

#define SCHEMA_VERSION 3
#define RELATED_MAX 100
#define LIST_DEFAULT 100
#define LIST_MAX 1000
#define POOL_DEFAULT 4
#define POOL_MAX 64
/* Advisory lock namespaces (first argument of the two-key form). */
#define LOCK_MIGRATE 0x65777470 /* "ewtp" */
#define LOCK_OKEY 0x65777471    /* 1702327409, written out in Q_KEY_LOCK */
#define LOCK_KEYQ 0x65777472    /* 1702327410, written out in Q_KEYQ_LOCK and accept_sql */

#define BLOCKING_STATES "('accepted','delivering','retrying','dead')"

/* Version 1: the whole schema of the SQLite store's version 5, in PostgreSQL terms. Later
 * versions append to migrations[]. */
static const char schema_v1[] =
    "CREATE TABLE messages(seq bigserial PRIMARY KEY,"
    " tenant text NOT NULL, id text NOT NULL, kind text NOT NULL, destination text NOT NULL,"
    " plugin text NOT NULL, state text NOT NULL, attempts bigint NOT NULL DEFAULT 0,"
    " next_attempt_at bigint NOT NULL DEFAULT 0, authority_ref text, hash text NOT NULL,"
    " canonical text NOT NULL, body bytea, ordering_key text, batch_key text,"
    " needs_chain integer NOT NULL DEFAULT 0, warnings text, errors text, lease_owner text,"
    " lease_until bigint, created_at bigint NOT NULL, updated_at bigint NOT NULL,"
    " wait_key text, wait_state text, wait_until bigint NOT NULL DEFAULT 0,"
    " UNIQUE(tenant, id));"
    "CREATE INDEX messages_due ON messages(next_attempt_at, seq)"
    " WHERE state IN ('accepted', 'retrying');"
    "CREATE INDEX messages_state ON messages(state, next_attempt_at);"
    "CREATE INDEX messages_live_key ON messages(ordering_key, seq)"
    " WHERE ordering_key IS NOT NULL AND state IN " BLOCKING_STATES ";"
    "CREATE INDEX messages_wait ON messages(wait_key) WHERE wait_key IS NOT NULL;"
    "CREATE TABLE relations(key text NOT NULL, seq bigint NOT NULL REFERENCES messages(seq),"
    " PRIMARY KEY(key, seq));"
    "CREATE TABLE events(eid bigserial PRIMARY KEY,"
    " seq bigint NOT NULL REFERENCES messages(seq), at bigint NOT NULL, type text NOT NULL,"
    " state text NOT NULL, attempt bigint NOT NULL, detail text);"
    "CREATE INDEX events_seq ON events(seq, eid);"
    "CREATE TABLE receipts(rid bigserial PRIMARY KEY,"
    " seq bigint NOT NULL REFERENCES messages(seq), at bigint NOT NULL, state text NOT NULL,"
    " code text, message text, raw bytea);"
    "CREATE INDEX receipts_seq ON receipts(seq, rid);"
    "CREATE TABLE chains(key text PRIMARY KEY, number bigint NOT NULL, authority_ref text,"
    " updated_at bigint NOT NULL);"
    /* Every authority reference a message ever had stays findable (SQLite's v2). */
    "CREATE TABLE refs(plugin text NOT NULL, ref text NOT NULL,"
    " seq bigint NOT NULL REFERENCES messages(seq), PRIMARY KEY(plugin, ref, seq));"
    "CREATE FUNCTION ewtp_ref_alias() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN"
    " IF NEW.authority_ref IS NOT NULL THEN INSERT INTO refs(plugin, ref, seq)"
    " VALUES(NEW.plugin, NEW.authority_ref, NEW.seq) ON CONFLICT DO NOTHING; END IF;"
    " RETURN NEW; END $f$;"
    "CREATE TRIGGER messages_ref_alias AFTER UPDATE OF authority_ref ON messages"
    " FOR EACH ROW EXECUTE FUNCTION ewtp_ref_alias();"
    "CREATE TABLE webhooks(wid bigserial PRIMARY KEY,"
    " seq bigint NOT NULL REFERENCES messages(seq), state text NOT NULL, at bigint NOT NULL,"
    " attempts bigint NOT NULL DEFAULT 0, next_at bigint NOT NULL, last_error text,"
    " created_at bigint NOT NULL);"
    "CREATE INDEX webhooks_due ON webhooks(next_at, wid);"
    "CREATE TABLE ops(oid bigserial PRIMARY KEY, seq bigint NOT NULL REFERENCES messages(seq),"
    " op text NOT NULL, reason text, state text NOT NULL, attempts bigint NOT NULL DEFAULT 0,"
    " next_at bigint NOT NULL, lease_owner text, lease_until bigint,"
    " created_at bigint NOT NULL, updated_at bigint NOT NULL);"
    "CREATE INDEX ops_live ON ops(state, next_at) WHERE state IN ('pending', 'delivering');"
    "CREATE INDEX ops_seq ON ops(seq, oid);"
    "CREATE TABLE key_states(key text PRIMARY KEY, state bytea NOT NULL,"
    " updated_at bigint NOT NULL);";

/* Version 2: a claim reads only the messages that may go (as SQLite's version 6 does):
 * without it every claim walked the whole backlog of a busy key, testing each message for a
 * live predecessor. blocked is true for a live message (BLOCKING_STATES) of an ordering key
 * with a live message before it. Kept by the application, under a lock per key in the
 * LOCK_KEYQ namespace: accepts take it shared (their batch computes blocked from what is
 * live), whatever makes a key's head leave or come back takes it exclusive and recomputes;
 * so an accept never misses the departure of the message it waits behind. A blocked = false
 * that should be true (two nodes accepting the first messages of a key at once) is harmless:
 * the claim re-checks the key under its own lock (header comment). */
static const char schema_v2[] =
    "ALTER TABLE messages ADD COLUMN blocked boolean NOT NULL DEFAULT false;"
    "UPDATE messages m SET blocked = true WHERE ordering_key IS NOT NULL"
    " AND state IN " BLOCKING_STATES " AND EXISTS(SELECT 1 FROM messages p"
    " WHERE p.ordering_key = m.ordering_key AND p.state IN " BLOCKING_STATES " AND p.seq < m.seq);"
    "CREATE INDEX messages_ready ON messages(next_attempt_at, seq)"
    " WHERE state IN ('accepted', 'retrying') AND NOT blocked;"
    "DROP INDEX messages_due;";

/* Version 3 (issue 18): the evidence of each message (store.h), the bytes sent and answered,
 * as SQLite's version 7 keeps it. A delivery attempt's rows are written in the transaction of
 * its outcome (ewtp_store_outcome.evidence). */
static const char schema_v3[] =
    "CREATE TABLE evidence(eid bigserial PRIMARY KEY,"
    " seq bigint NOT NULL REFERENCES messages(seq), at bigint NOT NULL, kind text NOT NULL,"
    " name text NOT NULL, meta text, body bytea NOT NULL);"
    "CREATE INDEX evidence_seq ON evidence(seq, eid);"
    "CREATE INDEX evidence_at ON evidence(at);";

static const char *const migrations[SCHEMA_VERSION + 1] = {NULL, schema_v1, schema_v2, schema_v3};

#define MSG_COLS                                                                                   \
    "seq, tenant, id, kind, destination, plugin, state, attempts, next_attempt_at,"                \
    " authority_ref, canonical, hash, ordering_key, batch_key, needs_chain, lease_owner,"          \
    " lease_until, created_at, updated_at, warnings, errors, wait_key, wait_state, wait_until"
enum msg_col {
    C_SEQ,
    C_TENANT,
    C_ID,
    C_KIND,
    C_DEST,
    C_PLUGIN,
    C_STATE,
    C_ATTEMPTS,
    C_NEXT,
    C_REF,
    C_CANON,
    C_HASH,
    C_OKEY,
    C_BKEY,
    C_CHAIN,
    C_LOWNER,
    C_LUNTIL,
    C_CREATED,
    C_UPDATED,
    C_WARN,
    C_ERRORS,
    C_WKEY,
    C_WSTATE,
    C_WUNTIL,
};

/* The "ordering key may go" rule of the header comment, for message m (seq, key). */
#define OKEY_FREE(seq, key)                                                                        \
    "NOT EXISTS(SELECT 1 FROM messages p WHERE p.ordering_key = " key " AND p.seq <> " seq         \
    " AND p.state IN " BLOCKING_STATES " AND (p.seq < " seq " OR p.state = 'delivering'))"

enum sql {
    Q_FIND,
    Q_MSG_BY_SEQ,
    Q_MSG_BY_TID,
    Q_INSERT_EVENT,
    Q_INSERT_RECEIPT,
    Q_RECEIPTS,
    Q_EVENTS,
    Q_LIST,
    Q_CLAIM_SELECT,
    Q_KEY_LOCK,
    Q_KEY_RECHECK,
    Q_KEYQ_LOCK,
    Q_KEY_UNBLOCK,
    Q_KEY_RECOMPUTE,
    Q_CLAIM_UPDATE,
    Q_REQUEUE,
    Q_OUTCOME,
    Q_SET_STATE,
    Q_SET_REF,
    Q_SET_ERRORS,
    Q_CHAIN_GET,
    Q_CHAIN_ADVANCE,
    Q_CHAIN_NEW,
    Q_CHAIN_PUT,
    Q_CHAIN_FIRST,
    Q_KSTATE_GET,
    Q_KSTATE_PUT,
    Q_BY_REF,
    Q_REPLAY,
    Q_RETRY_NOW,
    Q_RELATED,
    Q_COUNTS,
    Q_BACKLOG,
    Q_POLL_CLAIM,
    Q_POLL_SET,
    Q_WH_INSERT,
    Q_WH_CLAIM,
    Q_WH_GET,
    Q_WH_DELETE,
    Q_WH_RETRY,
    Q_WH_COUNT,
    Q_OP_LIVE,
    Q_OP_INSERT,
    Q_OP_CLAIM,
    Q_OP_GET,
    Q_OP_FINISH,
    Q_OP_REQUEUE,
    Q_OP_COUNT,
    Q_EV_INSERT,
    Q_EV_GET,
    Q_EV_PURGE,
    Q_EV_BYTES,
    Q_COUNT,
};

static const char *const sql_text[Q_COUNT] = {
    [Q_FIND] = "SELECT seq, hash, state FROM messages WHERE tenant = $1 AND id = $2",
    [Q_MSG_BY_SEQ] = "SELECT " MSG_COLS " FROM messages WHERE seq = $1",
    [Q_MSG_BY_TID] = "SELECT " MSG_COLS " FROM messages WHERE tenant = $1 AND id = $2",
    [Q_INSERT_EVENT] = "INSERT INTO events(seq, at, type, state, attempt, detail)"
                       " VALUES($1, $2, $3, $4, $5, $6)",
    [Q_INSERT_RECEIPT] = "INSERT INTO receipts(seq, at, state, code, message, raw)"
                         " VALUES($1, $2, $3, $4, $5, $6)",
    [Q_RECEIPTS] = "SELECT at, state, code, message FROM receipts WHERE seq = $1 ORDER BY rid",
    [Q_EVENTS] = "SELECT at, type, state, attempt, detail FROM events WHERE seq = $1"
                 " ORDER BY eid",
    [Q_LIST] = "SELECT " MSG_COLS " FROM messages WHERE seq > $1"
               " AND ($2::text IS NULL OR tenant = $2) AND ($3::text IS NULL OR state = $3)"
               " AND ($4::text IS NULL OR destination = $4) ORDER BY seq LIMIT $5",
    [Q_CLAIM_SELECT] =
        "SELECT m.seq, m.ordering_key FROM messages m WHERE m.state IN ('accepted', 'retrying')"
        " AND NOT m.blocked AND m.next_attempt_at <= $1"
        " AND (m.wait_key IS NULL OR m.wait_until <= $1 OR EXISTS("
        "  SELECT 1 FROM relations r JOIN messages o ON o.seq = r.seq"
        "  WHERE r.key = m.wait_key AND o.seq <> m.seq AND (o.state IN ('rejected', 'cancelled')"
        "  OR o.state = m.wait_state OR (m.wait_state = 'submitted' AND o.state = 'approved'))))"
        " ORDER BY m.next_attempt_at, m.seq LIMIT $2 FOR UPDATE OF m SKIP LOCKED",
    [Q_KEY_LOCK] = "SELECT pg_try_advisory_xact_lock(1702327409, hashtext($1))",
    [Q_KEY_RECHECK] = "SELECT " OKEY_FREE("$1::bigint", "$2::text"),
    /* The key of message $1 (if any), exclusive: its head is about to change (schema_v2). */
    [Q_KEYQ_LOCK] = "SELECT pg_advisory_xact_lock(1702327410, hashtext(ordering_key))"
                    " FROM messages WHERE seq = $1 AND ordering_key IS NOT NULL",
    /* Message $1 left the live states: the key's first live message may go. */
    [Q_KEY_UNBLOCK] = "UPDATE messages SET blocked = false WHERE seq = (SELECT min(p.seq)"
                      " FROM messages p WHERE p.ordering_key = (SELECT ordering_key FROM"
                      " messages WHERE seq = $1) AND p.state IN " BLOCKING_STATES ") AND blocked",
    /* Message $1 left or came back: every live message of its key but the first waits. */
    [Q_KEY_RECOMPUTE] = "UPDATE messages m SET blocked = (m.seq <> h.head) FROM (SELECT"
                        " min(p.seq) AS head, p.ordering_key AS k FROM messages p"
                        " WHERE p.ordering_key = (SELECT ordering_key FROM messages"
                        " WHERE seq = $1) AND p.state IN " BLOCKING_STATES
                        " GROUP BY p.ordering_key) h WHERE m.ordering_key = h.k"
                        " AND m.state IN " BLOCKING_STATES " AND m.blocked <> (m.seq <> h.head)",
    [Q_CLAIM_UPDATE] = "UPDATE messages SET state = 'delivering', attempts = attempts + 1,"
                       " next_attempt_at = 0, lease_owner = $2, lease_until = $3,"
                       " updated_at = $4 WHERE seq = $1 RETURNING " MSG_COLS,
    [Q_REQUEUE] = "UPDATE messages SET state = 'retrying', next_attempt_at = $1,"
                  " lease_owner = NULL, lease_until = NULL, updated_at = $1"
                  " WHERE seq IN (SELECT seq FROM messages WHERE state = 'delivering'"
                  " AND lease_until <= $1 ORDER BY seq LIMIT 1000 FOR UPDATE SKIP LOCKED)"
                  " RETURNING seq, attempts",
    /* Fenced (see the header comment). $8 NULL: the caller did not say who it is. */
    [Q_OUTCOME] = "UPDATE messages SET state = $2, authority_ref = coalesce($3, authority_ref),"
                  " next_attempt_at = $4, errors = coalesce($5, errors), lease_owner = NULL,"
                  " lease_until = NULL, updated_at = $6 WHERE seq = $1 AND state = 'delivering'"
                  " AND attempts = $7 AND ($8::text IS NULL OR lease_owner = $8)"
                  " AND ($9::bigint IS NULL OR lease_until > $9) RETURNING ordering_key",
    [Q_SET_STATE] = "UPDATE messages SET state = $2, next_attempt_at = $3, lease_owner = NULL,"
                    " lease_until = NULL, updated_at = $4 WHERE seq = $1",
    [Q_SET_REF] = "UPDATE messages SET authority_ref = coalesce($2, authority_ref),"
                  " updated_at = $3 WHERE seq = $1",
    [Q_SET_ERRORS] = "UPDATE messages SET errors = $2 WHERE seq = $1",
    [Q_CHAIN_GET] = "SELECT number, authority_ref FROM chains WHERE key = $1",
    /* number = last + 1, checked under the row lock of the UPDATE. */
    [Q_CHAIN_ADVANCE] = "UPDATE chains SET number = $2, authority_ref = $3, updated_at = $4"
                        " WHERE key = $1 AND number = $2 - 1",
    [Q_CHAIN_NEW] = "INSERT INTO chains(key, number, authority_ref, updated_at)"
                    " VALUES($1, 1, $2, $3) ON CONFLICT(key) DO NOTHING",
    [Q_CHAIN_PUT] = "INSERT INTO chains(key, number, authority_ref, updated_at)"
                    " VALUES($1, $2, $3, $4) ON CONFLICT(key) DO UPDATE SET"
                    " number = excluded.number, authority_ref = excluded.authority_ref,"
                    " updated_at = excluded.updated_at",
    [Q_CHAIN_FIRST] = "INSERT INTO chains(key, number, authority_ref, updated_at)"
                      " VALUES($1, $2, NULL, $3) ON CONFLICT(key) DO NOTHING",
    [Q_KSTATE_GET] = "SELECT state FROM key_states WHERE key = $1",
    [Q_KSTATE_PUT] = "INSERT INTO key_states(key, state, updated_at) VALUES($1, $2, $3)"
                     " ON CONFLICT(key) DO UPDATE SET state = excluded.state,"
                     " updated_at = excluded.updated_at",
    /* Never across tenants (as the SQLite backend's). */
    [Q_BY_REF] = "SELECT " MSG_COLS " FROM messages WHERE seq = (SELECT seq FROM refs"
                 " WHERE plugin = $1 AND ref = $2 ORDER BY seq DESC LIMIT 1)"
                 " AND NOT EXISTS(SELECT 1 FROM refs r JOIN messages o ON o.seq = r.seq"
                 " WHERE r.plugin = $1 AND r.ref = $2 AND o.tenant <> messages.tenant)",
    [Q_REPLAY] = "UPDATE messages SET state = 'accepted', attempts = 0, next_attempt_at = $2,"
                 " errors = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $2"
                 " WHERE seq = $1",
    [Q_RETRY_NOW] = "UPDATE messages SET next_attempt_at = $2, updated_at = $2 WHERE seq = $1",
    /* Per key the newest 16 of each tenant (a tenant flooding a key cannot push another's
     * messages out), the excluded tenant's own first, then newest first (store.h). */
    [Q_RELATED] = "SELECT " MSG_COLS " FROM messages WHERE seq IN (SELECT seq FROM (SELECT m.seq,"
                  " row_number() OVER (PARTITION BY r.key, m.tenant ORDER BY m.seq DESC) AS rn"
                  " FROM relations r JOIN messages m ON m.seq = r.seq"
                  " WHERE r.key = ANY($1::text[]) AND NOT (m.tenant IS NOT DISTINCT FROM $2::text"
                  " AND m.id IS NOT DISTINCT FROM $3::text)) x WHERE rn <= 16)"
                  " ORDER BY (tenant IS NOT DISTINCT FROM $2::text) DESC, seq DESC LIMIT 100",
    [Q_COUNTS] = "SELECT plugin, state, count(*) FROM messages GROUP BY plugin, state"
                 " ORDER BY plugin, state",
    [Q_BACKLOG] = "SELECT count(*), min(created_at) FROM messages"
                  " WHERE state IN ('accepted', 'delivering', 'retrying')",
    [Q_POLL_CLAIM] = "UPDATE messages SET next_attempt_at = $3 WHERE seq IN (SELECT seq FROM"
                     " messages WHERE state = 'submitted' AND next_attempt_at >= 0"
                     " AND next_attempt_at <= $1 ORDER BY next_attempt_at, seq LIMIT $2"
                     " FOR UPDATE SKIP LOCKED) RETURNING " MSG_COLS,
    [Q_POLL_SET] = "UPDATE messages SET next_attempt_at = $2 WHERE seq = $1"
                   " AND state = 'submitted'",
    [Q_WH_INSERT] = "INSERT INTO webhooks(seq, state, at, attempts, next_at, created_at)"
                    " VALUES($1, $2, $3, 0, $4, $4)",
    [Q_WH_CLAIM] = "WITH c AS (UPDATE webhooks SET attempts = attempts + 1, next_at = $3"
                   " WHERE wid IN (SELECT wid FROM webhooks WHERE next_at <= $1"
                   " ORDER BY next_at, wid LIMIT $2 FOR UPDATE SKIP LOCKED)"
                   " RETURNING wid, seq, state, at, attempts, created_at, next_at)"
                   " SELECT c.wid, c.seq, m.tenant, m.id, c.state, c.at, c.attempts, c.created_at"
                   " FROM c JOIN messages m ON m.seq = c.seq ORDER BY c.wid",
    [Q_WH_GET] = "SELECT seq, state, attempts FROM webhooks WHERE wid = $1 FOR UPDATE",
    [Q_WH_DELETE] = "DELETE FROM webhooks WHERE wid = $1",
    [Q_WH_RETRY] = "UPDATE webhooks SET next_at = $2, last_error = $3 WHERE wid = $1",
    [Q_WH_COUNT] = "SELECT count(*) FROM webhooks",
    [Q_OP_LIVE] = "SELECT oid FROM ops WHERE seq = $1 AND op = $2"
                  " AND state IN ('pending', 'delivering') ORDER BY oid LIMIT 1",
    [Q_OP_INSERT] = "INSERT INTO ops(seq, op, reason, state, next_at, created_at, updated_at)"
                    " VALUES($1, $2, $3, 'pending', $4, $4, $4)",
    [Q_OP_CLAIM] = "UPDATE ops SET state = 'delivering', attempts = attempts + 1,"
                   " lease_owner = $3, lease_until = $4, updated_at = $1 WHERE oid IN ("
                   "SELECT o.oid FROM ops o JOIN messages m ON m.seq = o.seq"
                   " WHERE o.state = 'pending' AND o.next_at <= $1"
                   " AND ((m.state IN ('submitted', 'approved') AND m.authority_ref IS NOT NULL)"
                   " OR m.state IN ('rejected', 'cancelled'))"
                   " ORDER BY o.next_at, o.oid LIMIT $2 FOR UPDATE OF o SKIP LOCKED)"
                   " RETURNING oid",
    [Q_OP_GET] = "SELECT oid, seq, op, reason, attempts, created_at FROM ops WHERE oid = $1",
    /* Fenced: only the holder of the attempt's lease records its end. */
    [Q_OP_FINISH] = "UPDATE ops SET state = $3, next_at = $4, lease_owner = NULL,"
                    " lease_until = NULL, updated_at = $5"
                    " WHERE oid = $1 AND attempts = $2 AND state = 'delivering' RETURNING seq",
    [Q_OP_REQUEUE] = "UPDATE ops SET state = 'pending', next_at = $1, lease_owner = NULL,"
                     " lease_until = NULL, updated_at = $1 WHERE oid IN (SELECT oid FROM ops"
                     " WHERE state = 'delivering' AND lease_until <= $1 LIMIT 1000"
                     " FOR UPDATE SKIP LOCKED)",
    [Q_OP_COUNT] = "SELECT count(*) FROM ops WHERE state IN ('pending', 'delivering')",
    [Q_EV_INSERT] = "INSERT INTO evidence(seq, at, kind, name, meta, body)"
                    " VALUES($1, $2, $3, $4, $5, $6)",
    [Q_EV_GET] = "SELECT at, kind, name, meta, body FROM evidence WHERE seq = $1 ORDER BY eid",
    [Q_EV_PURGE] = "DELETE FROM evidence WHERE at < $1",
    /* Bytes, not characters: octet_length reads a TOASTed body's size from its header. */
    [Q_EV_BYTES] = "SELECT coalesce(sum(octet_length(body) + coalesce(octet_length(meta), 0)), 0)"
                   " FROM evidence",
};

/* One connection and which statements it has prepared (named "q<index>"). */
struct pconn {
    PGconn *pg;
    bool prepared[Q_COUNT];
    bool busy;
};

struct pg_store {
    char *conninfo;
    struct pconn w; /* writer thread only */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a pool connection came back */
    struct pconn *pool;
    size_t n_pool;
};

/* ---- parameters and results ------------------------------------------------------------ */

#define PMAX 12
struct prm {
    const char *v[PMAX];
    int len[PMAX];
    int fmt[PMAX];
    char num[PMAX][24];
    int n;
};

static void p_str(struct prm *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void p_i64(struct prm *p, int64_t x)
{
    snprintf(p->num[p->n], sizeof(p->num[p->n]), "%" PRId64, x);
    p_str(p, p->num[p->n]);
}

/* Binary parameter (bytea); NULL data is SQL NULL. */
static void p_bin(struct prm *p, const void *data, size_t len)
{
    p->v[p->n] = data;
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

static const char *sname(enum ewtp_store_state s)
{
    return ewtp_store_state_name(s);
}

/* Whether r says the connection is gone (then the pool resets it). */
static int res_rc(PGresult *r, ExecStatusType want)
{
    if (r && PQresultStatus(r) == want)
        return 0;
    if (!r)
        return -EWTP_ENOMEM;
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (code && strcmp(code, "53200") == 0)
        return -EWTP_ENOMEM;
    return -EWTP_EIO;
}

/* Runs statement id with p on c (preparing it on first use); the result (caller clears). */
static PGresult *xq(struct pconn *c, enum sql id, const struct prm *p)
{
    char name[16];
    snprintf(name, sizeof(name), "q%d", (int)id);
    if (!c->prepared[id]) {
        PGresult *r = PQprepare(c->pg, name, sql_text[id], 0, NULL);
        bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            return r;
        PQclear(r);
        c->prepared[id] = true;
    }
    return PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                          p ? p->fmt : NULL, 0);
}

/* Runs a statement that returns no rows (or whose rows do not matter); *changed (may be
 * NULL) the rows it touched. */
static int xexec(struct pconn *c, enum sql id, const struct prm *p, int64_t *changed)
{
    PGresult *r = xq(c, id, p);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : res_rc(r, PGRES_COMMAND_OK);
    if (rc == 0 && changed) {
        const char *t = PQcmdTuples(r);
        *changed = t && *t ? strtoll(t, NULL, 10) : 0;
    }
    PQclear(r);
    return rc;
}

/* Runs a select; 0 and *out (caller clears) or a negative code. */
static int xsel(struct pconn *c, enum sql id, const struct prm *p, PGresult **out)
{
    PGresult *r = xq(c, id, p);
    int rc = res_rc(r, PGRES_TUPLES_OK);
    if (rc < 0) {
        PQclear(r);
        return rc;
    }
    *out = r;
    return 0;
}

static int simple(struct pconn *c, const char *sql)
{
    PGresult *r = PQexec(c->pg, sql);
    int rc = res_rc(r, PGRES_COMMAND_OK);
    PQclear(r);
    return rc;
}

static int64_t gi(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static char *gs(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

/* A NULL from gs is fine when the column is NULL. */
static bool gs_ok(const PGresult *r, int row, int col, const char *v)
{
    return v != NULL || PQgetisnull(r, row, col);
}

static enum ewtp_store_state gstate(const PGresult *r, int row, int col)
{
    enum ewtp_store_state st = EWTP_STORE_ACCEPTED;
    if (!PQgetisnull(r, row, col))
        ewtp_store_state_from_name(PQgetvalue(r, row, col), &st);
    return st;
}

/* ---- event details (as in the SQLite backend) ----------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const unsigned char *p, size_t n)
{
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = b64[(v >> 18) & 63];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static json_t *time_json(int64_t ms)
{
    char buf[40];
    return json_string(ewtp_store_fmt_time(buf, sizeof(buf), ms));
}

static json_t *stored_json(const char *text)
{
    if (!text)
        return json_null();
    json_t *j = json_loads(text, 0, NULL);
    return j ? j : json_string(text);
}

static json_t *detail_new(const char *caller)
{
    json_t *d = caller ? json_loads(caller, 0, NULL) : NULL;
    return d ? d : json_object();
}

static void detail_receipt(json_t *d, const struct ewtp_store_receipt *r)
{
    if (!r)
        return;
    if (r->code)
        json_object_set_new(d, "code", json_string(r->code));
    if (r->message)
        json_object_set_new(d, "message", json_string(r->message));
    json_object_set_new(d, "receipt_state", json_string(sname(r->state)));
    if (r->raw) {
        json_t *s = json_stringn(r->raw, r->raw_len);
        if (s) {
            json_object_set_new(d, "raw", s);
        } else {
            char *e = base64(r->raw, r->raw_len);
            if (e)
                json_object_set_new(d, "raw_base64", json_string(e));
            free(e);
        }
    }
}

static void detail_chain(json_t *d, const struct ewtp_store_chain_advance *ch)
{
    if (!ch)
        return;
    json_t *o = json_pack("{s:s, s:I}", "key", ch->key, "number", (json_int_t)ch->number);
    if (o && ch->ref)
        json_object_set_new(o, "ref", json_string(ch->ref));
    json_object_set_new(d, "chain", o);
}

/* ---- connections -------------------------------------------------------------------------- */

static void conn_forget(struct pconn *c)
{
    memset(c->prepared, 0, sizeof(c->prepared));
}

/* Makes c usable: a broken connection is reset (its prepared statements are gone). */
static int conn_ready(struct pconn *c)
{
    if (PQstatus(c->pg) != CONNECTION_OK) {
        conn_forget(c);
        PQreset(c->pg);
        if (PQstatus(c->pg) != CONNECTION_OK)
            return -EWTP_EIO;
    }
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        simple(c, "ROLLBACK");
    return 0;
}

static struct pconn *acquire(struct pg_store *ps)
{
    pthread_mutex_lock(&ps->mu);
    struct pconn *c = NULL;
    for (;;) {
        for (size_t i = 0; i < ps->n_pool && !c; i++)
            if (!ps->pool[i].busy)
                c = &ps->pool[i];
        if (c)
            break;
        pthread_cond_wait(&ps->cv, &ps->mu);
    }
    c->busy = true;
    pthread_mutex_unlock(&ps->mu);
    return c;
}

static void release(struct pg_store *ps, struct pconn *c)
{
    pthread_mutex_lock(&ps->mu);
    c->busy = false;
    pthread_cond_signal(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
}

/* Borrows a connection and begins a transaction on it: 0 and *out, or a negative code (the
 * connection is already back). */
static int begin(struct pg_store *ps, struct pconn **out)
{
    struct pconn *c = acquire(ps);
    int rc = conn_ready(c);
    if (rc == 0)
        rc = simple(c, "BEGIN");
    if (rc < 0) {
        release(ps, c);
        return rc;
    }
    *out = c;
    return 0;
}

/* Ends the transaction (commit when rc == 0, else rollback), gives the connection back and
 * returns the final rc. */
static int finish(struct pg_store *ps, struct pconn *c, int rc)
{
    if (rc == 0)
        rc = simple(c, "COMMIT");
    if (rc < 0 && PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        simple(c, "ROLLBACK");
    release(ps, c);
    return rc;
}

/* ---- shared pieces of transactions ------------------------------------------------------ */

/* n evidence rows of message seq in c's transaction (at <= 0: now). */
static int insert_evidence(struct pconn *c, int64_t seq, const struct ewtp_store_evidence *e,
                           size_t n, int64_t now)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (e[i].body_len > INT32_MAX)
            return -EWTP_EINVAL; /* libpq lengths are int */
        struct prm p = {0};
        p_i64(&p, seq);
        p_i64(&p, e[i].at > 0 ? e[i].at : now);
        p_str(&p, e[i].kind);
        p_str(&p, e[i].name);
        p_str(&p, e[i].meta);
        p_bin(&p, e[i].body ? e[i].body : "", e[i].body_len);
        rc = xexec(c, Q_EV_INSERT, &p, NULL);
    }
    return rc;
}

static int insert_event(struct pconn *c, int64_t seq, int64_t at, const char *type,
                        enum ewtp_store_state state, int64_t attempt, json_t *detail)
{
    char *text = NULL;
    if (detail && json_object_size(detail) > 0) {
        text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
            return -EWTP_ENOMEM;
    }
    struct prm p = {0};
    p_i64(&p, seq);
    p_i64(&p, at);
    p_str(&p, type);
    p_str(&p, sname(state));
    p_i64(&p, attempt);
    p_str(&p, text);
    int rc = xexec(c, Q_INSERT_EVENT, &p, NULL);
    free(text);
    return rc;
}

static int insert_receipt(struct pconn *c, int64_t seq, int64_t now,
                          const struct ewtp_store_receipt *r)
{
    struct prm p = {0};
    p_i64(&p, seq);
    p_i64(&p, r->at > 0 ? r->at : now);
    p_str(&p, sname(r->state));
    p_str(&p, r->code);
    p_str(&p, r->message);
    p_bin(&p, r->raw, r->raw_len);
    return xexec(c, Q_INSERT_RECEIPT, &p, NULL);
}

static int webhook_insert(struct pconn *c, int64_t seq, enum ewtp_store_state state, int64_t at,
                          int64_t now)
{
    struct prm p = {0};
    p_i64(&p, seq);
    p_str(&p, sname(state));
    p_i64(&p, at);
    p_i64(&p, now);
    return xexec(c, Q_WH_INSERT, &p, NULL);
}

/* No gap, no duplicate, across nodes: the UPDATE holds the chain's row lock and checks
 * number = last + 1 against the newest committed row; a new chain starts at 1 only. */
static int chain_advance(struct pconn *c, const struct ewtp_store_chain_advance *ch, int64_t now)
{
    struct prm p = {0};
    p_str(&p, ch->key);
    p_i64(&p, ch->number);
    p_str(&p, ch->ref);
    p_i64(&p, now);
    int64_t n = 0;
    int rc = xexec(c, Q_CHAIN_ADVANCE, &p, &n);
    if (rc < 0 || n == 1)
        return rc;
    if (ch->number != 1)
        return -EWTP_ERANGE;
    struct prm q = {0};
    p_str(&q, ch->key);
    p_str(&q, ch->ref);
    p_i64(&q, now);
    rc = xexec(c, Q_CHAIN_NEW, &q, &n);
    return rc < 0 ? rc : n == 1 ? 0 : -EWTP_ERANGE;
}

static int key_state_put(struct pconn *c, const struct ewtp_store_outcome *o)
{
    int rc = 0;
    if (o->key_state) {
        struct prm p = {0};
        p_str(&p, o->okey);
        p_bin(&p, o->key_state_len ? o->key_state : "", o->key_state_len);
        p_i64(&p, o->now);
        rc = xexec(c, Q_KSTATE_PUT, &p, NULL);
    }
    if (rc == 0 && o->chain_first > 0) {
        struct prm p = {0};
        p_str(&p, o->okey);
        p_i64(&p, o->chain_first - 1);
        p_i64(&p, o->now);
        rc = xexec(c, Q_CHAIN_FIRST, &p, NULL);
    }
    return rc;
}

/* Fills m from row `row` of a MSG_COLS result. */
static int row_msg(const PGresult *r, int row, struct ewtp_store_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->key = (uint64_t)gi(r, row, C_SEQ);
    m->tenant = gs(r, row, C_TENANT);
    m->id = gs(r, row, C_ID);
    m->kind = gs(r, row, C_KIND);
    m->destination = gs(r, row, C_DEST);
    m->plugin = gs(r, row, C_PLUGIN);
    m->state = gstate(r, row, C_STATE);
    m->attempts = (uint32_t)gi(r, row, C_ATTEMPTS);
    m->next_attempt_at = gi(r, row, C_NEXT);
    m->authority_ref = gs(r, row, C_REF);
    m->canonical_len = (size_t)PQgetlength(r, row, C_CANON);
    m->canonical = malloc(m->canonical_len + 1);
    if (m->canonical) {
        memcpy(m->canonical, PQgetvalue(r, row, C_CANON), m->canonical_len);
        m->canonical[m->canonical_len] = '\0';
    }
    m->hash = gs(r, row, C_HASH);
    m->ordering_key = gs(r, row, C_OKEY);
    m->batch_key = gs(r, row, C_BKEY);
    m->needs_chain = gi(r, row, C_CHAIN) != 0;
    m->lease_owner = gs(r, row, C_LOWNER);
    m->lease_until = gi(r, row, C_LUNTIL);
    m->created_at = gi(r, row, C_CREATED);
    m->updated_at = gi(r, row, C_UPDATED);
    m->wait_key = gs(r, row, C_WKEY);
    m->wait_state = gstate(r, row, C_WSTATE);
    m->wait_until = gi(r, row, C_WUNTIL);
    bool ok = m->tenant && m->id && m->kind && m->destination && m->plugin && m->canonical &&
              m->hash && gs_ok(r, row, C_REF, m->authority_ref) &&
              gs_ok(r, row, C_OKEY, m->ordering_key) && gs_ok(r, row, C_BKEY, m->batch_key) &&
              gs_ok(r, row, C_LOWNER, m->lease_owner) && gs_ok(r, row, C_WKEY, m->wait_key);
    return ok ? 0 : -EWTP_ENOMEM;
}

/* Every row of a MSG_COLS result (at most max) into a malloc'd array. */
static int collect_msgs(const PGresult *r, size_t max, struct ewtp_store_msg **out, size_t *n)
{
    size_t cnt = (size_t)PQntuples(r);
    if (cnt > max)
        cnt = max;
    struct ewtp_store_msg *v = cnt ? calloc(cnt, sizeof(*v)) : NULL;
    if (cnt && !v)
        return -EWTP_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        int rc = row_msg(r, (int)i, &v[i]);
        if (rc < 0) {
            ewtp_store_msgs_free(v, i + 1);
            return rc;
        }
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* seq (when asked), state and attempts (when asked) of a message, in c's transaction, with
 * its row locked when lock (FOR UPDATE: the other writers of the row wait for us). */
static int find_msg(struct pconn *c, enum sql id, const struct prm *p, int64_t *seq,
                    enum ewtp_store_state *state, int64_t *attempts)
{
    PGresult *r;
    int rc = xsel(c, id, p, &r);
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return -EWTP_ENOTFOUND;
    }
    if (seq)
        *seq = gi(r, 0, C_SEQ);
    *state = gstate(r, 0, C_STATE);
    if (attempts)
        *attempts = gi(r, 0, C_ATTEMPTS);
    PQclear(r);
    return 0;
}

static int find_tid(struct pconn *c, const char *tenant, const char *id, int64_t *seq,
                    enum ewtp_store_state *state, int64_t *attempts)
{
    struct prm p = {0};
    p_str(&p, tenant);
    p_str(&p, id);
    return find_msg(c, Q_MSG_BY_TID, &p, seq, state, attempts);
}

static int find_seq(struct pconn *c, int64_t seq, enum ewtp_store_state *state, int64_t *attempts)
{
    struct prm p = {0};
    p_i64(&p, seq);
    return find_msg(c, Q_MSG_BY_SEQ, &p, NULL, state, attempts);
}

/* ---- group commit (writer connection) ---------------------------------------------------- */

static int pg_batch_begin(void *impl)
{
    struct pg_store *ps = impl;
    int rc = conn_ready(&ps->w);
    return rc < 0 ? rc : simple(&ps->w, "BEGIN");
}

/* Appends text to a growing buffer. */
struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t len)
{
    if (b->oom)
        return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static void sb_s(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* A quoted literal of s (or NULL), escaped by libpq for this connection. */
static void sb_lit(struct sbuf *b, PGconn *pg, const char *s, size_t len)
{
    if (!s) {
        sb_s(b, "NULL");
        return;
    }
    char *e = PQescapeLiteral(pg, s, len);
    if (!e) {
        b->oom = true;
        return;
    }
    sb_s(b, e);
    PQfreemem(e);
}

static void sb_str(struct sbuf *b, PGconn *pg, const char *s)
{
    sb_lit(b, pg, s, s ? strlen(s) : 0);
}

static void sb_i64(struct sbuf *b, int64_t v)
{
    char n[24];
    snprintf(n, sizeof(n), "%" PRId64, v);
    sb_s(b, n);
}

static void sb_bytea(struct sbuf *b, const void *data, size_t len)
{
    if (!data) {
        sb_s(b, "NULL");
        return;
    }
    static const char hex[] = "0123456789abcdef";
    sb_s(b, "'\\x");
    const unsigned char *p = data;
    char two[2];
    for (size_t i = 0; i < len; i++) {
        two[0] = hex[p[i] >> 4];
        two[1] = hex[p[i] & 15];
        sb_add(b, two, 2);
    }
    sb_s(b, "'::bytea");
}

/* The accept of r as one simple-protocol text: savepoint, insert (with relations and event)
 * returning the row it made or the row already there, release. */
static char *accept_sql(PGconn *pg, const struct ewtp_store_accept_req *r)
{
    struct sbuf b = {0};
    char detail[128];
    snprintf(detail, sizeof(detail), "{\"hash\":\"%s\"}", r->hash);
    sb_s(&b, "SAVEPOINT a;");
    if (r->ordering_key) {
        /* The key's lock, shared (schema_v2): taken before the statement that reads what is
         * live, so that statement's snapshot sees every departure committed before. */
        sb_s(&b, " SELECT pg_advisory_xact_lock_shared(1702327410, hashtext(");
        sb_str(&b, pg, r->ordering_key);
        sb_s(&b, "));");
    }
    sb_s(&b, " WITH ins AS (INSERT INTO messages(tenant, id, kind, destination,"
             " plugin, state, attempts, next_attempt_at, hash, canonical, body, ordering_key,"
             " batch_key, needs_chain, warnings, created_at, updated_at, wait_key, wait_state,"
             " wait_until, blocked) VALUES(");
    sb_str(&b, pg, r->tenant);
    sb_s(&b, ",");
    sb_str(&b, pg, r->id);
    sb_s(&b, ",");
    sb_str(&b, pg, r->kind);
    sb_s(&b, ",");
    sb_str(&b, pg, r->destination);
    sb_s(&b, ",");
    sb_str(&b, pg, r->plugin);
    sb_s(&b, ",'accepted',0,");
    sb_i64(&b, r->now);
    sb_s(&b, ",");
    sb_str(&b, pg, r->hash);
    sb_s(&b, ",");
    sb_lit(&b, pg, r->canonical, r->canonical_len);
    sb_s(&b, ",");
    sb_bytea(&b, r->body, r->body_len);
    sb_s(&b, ",");
    sb_str(&b, pg, r->ordering_key);
    sb_s(&b, ",");
    sb_str(&b, pg, r->batch_key);
    sb_s(&b, r->needs_chain ? ",1," : ",0,");
    sb_str(&b, pg, r->warnings);
    sb_s(&b, ",");
    sb_i64(&b, r->now);
    sb_s(&b, ",");
    sb_i64(&b, r->now);
    sb_s(&b, ",");
    sb_str(&b, pg, r->wait_key);
    sb_s(&b, ",");
    sb_str(&b, pg, r->wait_key ? sname(r->wait_state) : NULL);
    sb_s(&b, ",");
    sb_i64(&b, r->wait_key ? r->wait_until : 0);
    if (r->ordering_key) {
        sb_s(&b, ", EXISTS(SELECT 1 FROM messages p WHERE p.ordering_key = ");
        sb_str(&b, pg, r->ordering_key);
        sb_s(&b, " AND p.state IN " BLOCKING_STATES ")");
    } else {
        sb_s(&b, ", false");
    }
    sb_s(&b, ") ON CONFLICT (tenant, id) DO NOTHING RETURNING seq)");
    if (r->n_relations) {
        sb_s(&b, ", rel AS (INSERT INTO relations(key, seq) SELECT DISTINCT k, ins.seq FROM ins,"
                 " unnest(ARRAY[");
        for (size_t i = 0; i < r->n_relations; i++) {
            if (i)
                sb_s(&b, ",");
            sb_str(&b, pg, r->relations[i]);
        }
        sb_s(&b, "]::text[]) k ON CONFLICT DO NOTHING)");
    }
    sb_s(&b, ", ev AS (INSERT INTO events(seq, at, type, state, attempt, detail) SELECT seq, ");
    sb_i64(&b, r->now);
    sb_s(&b, ", 'accepted', 'accepted', 0, ");
    sb_str(&b, pg, detail);
    sb_s(&b, " FROM ins) SELECT seq, NULL::text, 'accepted' FROM ins UNION ALL"
             " SELECT seq, hash, state FROM messages WHERE tenant = ");
    sb_str(&b, pg, r->tenant);
    sb_s(&b, " AND id = ");
    sb_str(&b, pg, r->id);
    sb_s(&b, " AND NOT EXISTS(SELECT 1 FROM ins); RELEASE a;");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* The result of the SELECT part of an accept: 1 when it decided, 0 when it found nothing
 * (a row of another node committed after this statement's snapshot). */
static int accept_decide(const PGresult *res, const struct ewtp_store_accept_req *r,
                         enum ewtp_store_accept_result *result, enum ewtp_store_state *state)
{
    if (PQntuples(res) == 0)
        return 0;
    if (PQgetisnull(res, 0, 1)) {
        *result = EWTP_STORE_NEW;
        *state = EWTP_STORE_ACCEPTED;
    } else {
        *result =
            strcmp(PQgetvalue(res, 0, 1), r->hash) == 0 ? EWTP_STORE_REPEAT : EWTP_STORE_CONFLICT;
        *state = gstate(res, 0, 2);
    }
    return 1;
}

static int pg_batch_accept(void *impl, const struct ewtp_store_accept_req *r,
                           enum ewtp_store_accept_result *result, enum ewtp_store_state *state)
{
    struct pg_store *ps = impl;
    struct pconn *c = &ps->w;
    char *sql = accept_sql(c->pg, r);
    if (!sql)
        return -EWTP_ENOMEM;
    int rc = PQsendQuery(c->pg, sql) ? 0 : -EWTP_EIO;
    free(sql);
    int decided = -1, failed = 0;
    PGresult *res;
    while (rc == 0 && (res = PQgetResult(c->pg)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK && PQnfields(res) == 3)
            decided = accept_decide(res, r, result, state);
        else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !failed) {
            failed = res_rc(res, PGRES_COMMAND_OK);
        }
        PQclear(res);
    }
    if (rc == 0 && failed) {
        /* The savepoint exists (it was the first statement): undo this accept alone. */
        rc = failed;
        simple(c, "ROLLBACK TO a; RELEASE a");
    } else if (rc == 0 && decided == 0) {
        /* Inserted by another node after our snapshot: read it now (a fresh snapshot). */
        struct prm p = {0};
        p_str(&p, r->tenant);
        p_str(&p, r->id);
        PGresult *f = NULL;
        rc = xsel(c, Q_FIND, &p, &f);
        if (rc == 0 && PQntuples(f) == 1) {
            *result =
                strcmp(PQgetvalue(f, 0, 1), r->hash) == 0 ? EWTP_STORE_REPEAT : EWTP_STORE_CONFLICT;
            *state = gstate(f, 0, 2);
        } else if (rc == 0) {
            rc = -EWTP_EIO;
        }
        PQclear(f);
    } else if (rc == 0 && decided < 0) {
        rc = -EWTP_EIO;
    }
    return rc;
}

static int pg_batch_commit(void *impl)
{
    struct pg_store *ps = impl;
    return simple(&ps->w, "COMMIT");
}

static void pg_batch_rollback(void *impl)
{
    struct pg_store *ps = impl;
    if (PQstatus(ps->w.pg) == CONNECTION_OK && PQtransactionStatus(ps->w.pg) != PQTRANS_IDLE)
        simple(&ps->w, "ROLLBACK");
}

/* ---- reads -------------------------------------------------------------------------------- */

static int get_one(struct pg_store *ps, enum sql id, const char *a, const char *b,
                   struct ewtp_store_msg **out)
{
    struct pconn *c = acquire(ps);
    int rc = conn_ready(c);
    PGresult *r = NULL;
    if (rc == 0) {
        struct prm p = {0};
        p_str(&p, a);
        p_str(&p, b);
        rc = xsel(c, id, &p, &r);
    }
    release(ps, c);
    if (rc == 0) {
        size_t n = 0;
        rc = collect_msgs(r, 1, out, &n);
        if (rc == 0 && n == 0)
            rc = -EWTP_ENOTFOUND;
        PQclear(r);
    }
    return rc;
}

static int pg_get(void *impl, const char *tenant, const char *id, struct ewtp_store_msg **out)
{
    return get_one(impl, Q_MSG_BY_TID, tenant, id, out);
}

/* The status row of row `row` of a MSG_COLS result, with its receipts. */
static int status_row(struct pconn *c, const PGresult *s, int row, struct ewtp_store_status *o)
{
    memset(o, 0, sizeof(*o));
    o->tenant = gs(s, row, C_TENANT);
    o->id = gs(s, row, C_ID);
    o->kind = gs(s, row, C_KIND);
    o->destination = gs(s, row, C_DEST);
    o->plugin = gs(s, row, C_PLUGIN);
    o->state = gstate(s, row, C_STATE);
    o->attempts = gi(s, row, C_ATTEMPTS);
    o->next_attempt_at = gi(s, row, C_NEXT);
    o->authority_ref = gs(s, row, C_REF);
    o->warnings = gs(s, row, C_WARN);
    o->errors = gs(s, row, C_ERRORS);
    o->created_at = gi(s, row, C_CREATED);
    o->updated_at = gi(s, row, C_UPDATED);
    if (!o->tenant || !o->id || !o->kind || !o->destination || !o->plugin ||
        !gs_ok(s, row, C_REF, o->authority_ref) || !gs_ok(s, row, C_WARN, o->warnings) ||
        !gs_ok(s, row, C_ERRORS, o->errors))
        return -EWTP_ENOMEM;
    struct prm p = {0};
    p_i64(&p, gi(s, row, C_SEQ));
    PGresult *r;
    int rc = xsel(c, Q_RECEIPTS, &p, &r);
    if (rc < 0)
        return rc;
    int n = PQntuples(r);
    if (n > 0 && !(o->receipts = calloc((size_t)n, sizeof(*o->receipts))))
        rc = -EWTP_ENOMEM;
    for (int i = 0; rc == 0 && i < n; i++) {
        struct ewtp_store_receipt_row *e = &o->receipts[o->n_receipts++];
        e->at = gi(r, i, 0);
        e->state = gs(r, i, 1);
        e->code = gs(r, i, 2);
        e->message = gs(r, i, 3);
        if (!gs_ok(r, i, 1, e->state) || !gs_ok(r, i, 2, e->code) || !gs_ok(r, i, 3, e->message))
            rc = -EWTP_ENOMEM;
    }
    PQclear(r);
    return rc;
}

/* A read-only transaction: one snapshot for the message and its rows. */
static int begin_read(struct pg_store *ps, struct pconn **out)
{
    struct pconn *c = acquire(ps);
    int rc = conn_ready(c);
    if (rc == 0)
        rc = simple(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (rc < 0) {
        release(ps, c);
        return rc;
    }
    *out = c;
    return 0;
}

static int pg_status_get(void *impl, const char *tenant, const char *id,
                         struct ewtp_store_status **out)
{
    struct pg_store *ps = impl;
    struct ewtp_store_status *o = calloc(1, sizeof(*o));
    if (!o)
        return -EWTP_ENOMEM;
    struct pconn *c;
    int rc = begin_read(ps, &c);
    if (rc == 0) {
        struct prm p = {0};
        p_str(&p, tenant);
        p_str(&p, id);
        PGresult *r;
        rc = xsel(c, Q_MSG_BY_TID, &p, &r);
        if (rc == 0) {
            rc = PQntuples(r) == 1 ? status_row(c, r, 0, o) : -EWTP_ENOTFOUND;
            PQclear(r);
        }
        finish(ps, c, 0);
    }
    if (rc < 0) {
        ewtp_store_status_free(o, 1);
        return rc;
    }
    *out = o;
    return 0;
}

static int pg_events(void *impl, const char *tenant, const char *id, struct ewtp_store_event **out,
                     size_t *n)
{
    struct pg_store *ps = impl;
    struct pconn *c;
    struct ewtp_store_event *v = NULL;
    size_t cnt = 0;
    int rc = begin_read(ps, &c);
    if (rc == 0) {
        int64_t seq = 0;
        enum ewtp_store_state st;
        rc = find_tid(c, tenant, id, &seq, &st, NULL);
        PGresult *r = NULL;
        if (rc == 0) {
            struct prm p = {0};
            p_i64(&p, seq);
            rc = xsel(c, Q_EVENTS, &p, &r);
        }
        if (rc == 0) {
            int rows = PQntuples(r);
            if (rows > 0 && !(v = calloc((size_t)rows, sizeof(*v))))
                rc = -EWTP_ENOMEM;
            for (int i = 0; rc == 0 && i < rows; i++) {
                struct ewtp_store_event *e = &v[cnt++];
                e->at = gi(r, i, 0);
                e->type = gs(r, i, 1);
                e->state = gs(r, i, 2);
                e->attempt = gi(r, i, 3);
                e->detail = gs(r, i, 4);
                if (!e->type || !e->state || !gs_ok(r, i, 4, e->detail))
                    rc = -EWTP_ENOMEM;
            }
            PQclear(r);
        }
        finish(ps, c, 0);
    }
    if (rc < 0) {
        ewtp_store_events_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int parse_cursor(const char *after, int64_t *seq)
{
    *seq = 0;
    if (!after || !*after)
        return 0;
    int64_t v = 0;
    for (const char *p = after; *p; p++) {
        if (*p < '0' || *p > '9' || p - after >= 18)
            return -EWTP_EINVAL;
        v = v * 10 + (*p - '0');
    }
    *seq = v;
    return 0;
}

static int pg_list(void *impl, const struct ewtp_store_filter *f, struct ewtp_store_page *out)
{
    int64_t after;
    if (parse_cursor(f->after, &after) < 0)
        return -EWTP_EINVAL;
    size_t limit = f->limit ? f->limit : LIST_DEFAULT;
    if (limit > LIST_MAX)
        limit = LIST_MAX;
    struct pg_store *ps = impl;
    struct ewtp_store_status *items = calloc(limit, sizeof(*items));
    if (!items)
        return -EWTP_ENOMEM;
    size_t cnt = 0;
    int64_t last = 0;
    bool more = false;
    struct pconn *c;
    int rc = begin_read(ps, &c);
    if (rc == 0) {
        struct prm p = {0};
        p_i64(&p, after);
        p_str(&p, f->tenant);
        p_str(&p, f->state);
        p_str(&p, f->destination);
        p_i64(&p, (int64_t)limit + 1);
        PGresult *r;
        rc = xsel(c, Q_LIST, &p, &r);
        if (rc == 0) {
            int rows = PQntuples(r);
            for (int i = 0; rc == 0 && i < rows; i++) {
                if (cnt == limit) {
                    more = true;
                    break;
                }
                last = gi(r, i, C_SEQ);
                rc = status_row(c, r, i, &items[cnt++]);
            }
            PQclear(r);
        }
        finish(ps, c, 0);
    }
    char *next = NULL;
    if (rc == 0 && more) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRId64, last);
        next = strdup(buf);
        if (!next)
            rc = -EWTP_ENOMEM;
    }
    if (rc < 0) {
        ewtp_store_status_free(items, cnt);
        return rc;
    }
    out->items = items;
    out->n = cnt;
    out->next = next;
    return 0;
}

/* ---- dispatcher --------------------------------------------------------------------------- */

/* Whether message seq of ordering key okey may be claimed now by this transaction: the key's
 * lock (try, so that a key being claimed elsewhere is skipped) and the rule again on a fresh
 * snapshot (see the header comment). 1 yes, 0 no, or a negative code. */
static int okey_take(struct pconn *c, int64_t seq, const char *okey)
{
    struct prm p = {0};
    p_str(&p, okey);
    PGresult *r;
    int rc = xsel(c, Q_KEY_LOCK, &p, &r);
    if (rc < 0)
        return rc;
    bool locked = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!locked)
        return 0;
    struct prm q = {0};
    p_i64(&q, seq);
    p_str(&q, okey);
    rc = xsel(c, Q_KEY_RECHECK, &q, &r);
    if (rc < 0)
        return rc;
    bool free_ = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return free_ ? 1 : 0;
}

static int pg_claim_due(void *impl, int64_t now, size_t limit, int64_t lease_ms, const char *owner,
                        struct ewtp_store_msg **out, size_t *n)
{
    struct pg_store *ps = impl;
    struct pconn *c;
    struct ewtp_store_msg *msgs = NULL;
    size_t cnt = 0;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    struct prm p = {0};
    p_i64(&p, now);
    p_i64(&p, (int64_t)limit);
    PGresult *cand = NULL;
    rc = xsel(c, Q_CLAIM_SELECT, &p, &cand);
    int rows = rc == 0 ? PQntuples(cand) : 0;
    if (rows > 0 && !(msgs = calloc((size_t)rows, sizeof(*msgs))))
        rc = -EWTP_ENOMEM;
    json_t *d = json_pack("{s:s}", "owner", owner);
    if (!d)
        rc = -EWTP_ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++) {
        int64_t seq = gi(cand, i, 0);
        if (!PQgetisnull(cand, i, 1)) {
            int ok = okey_take(c, seq, PQgetvalue(cand, i, 1));
            if (ok <= 0) {
                rc = ok;
                continue;
            }
        }
        struct prm u = {0};
        p_i64(&u, seq);
        p_str(&u, owner);
        p_i64(&u, now + lease_ms);
        p_i64(&u, now);
        PGresult *r;
        rc = xsel(c, Q_CLAIM_UPDATE, &u, &r);
        if (rc < 0)
            break;
        rc = PQntuples(r) == 1 ? row_msg(r, 0, &msgs[cnt]) : -EWTP_EIO;
        PQclear(r);
        cnt++;
        if (rc == 0)
            rc = insert_event(c, seq, now, "claimed", EWTP_STORE_DELIVERING,
                              (int64_t)msgs[cnt - 1].attempts, d);
    }
    json_decref(d);
    PQclear(cand);
    rc = finish(ps, c, rc);
    if (rc < 0) {
        ewtp_store_msgs_free(msgs, cnt);
        return rc;
    }
    if (cnt == 0) {
        free(msgs);
        msgs = NULL;
    }
    *out = msgs;
    *n = cnt;
    return 0;
}

static int pg_requeue_expired(void *impl, int64_t now, size_t *n)
{
    struct pg_store *ps = impl;
    struct pconn *c;
    size_t cnt = 0;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    struct prm p = {0};
    p_i64(&p, now);
    PGresult *r;
    rc = xsel(c, Q_REQUEUE, &p, &r);
    if (rc == 0) {
        int rows = PQntuples(r);
        for (int i = 0; rc == 0 && i < rows; i++)
            rc = insert_event(c, gi(r, i, 0), now, "lease_expired", EWTP_STORE_RETRYING,
                              gi(r, i, 1), NULL);
        cnt = (size_t)rows;
        PQclear(r);
    }
    if (rc == 0)
        rc = xexec(c, Q_OP_REQUEUE, &p, NULL);
    rc = finish(ps, c, rc);
    *n = rc == 0 ? cnt : 0;
    return rc;
}

static bool state_blocking(enum ewtp_store_state s)
{
    return s == EWTP_STORE_ACCEPTED || s == EWTP_STORE_DELIVERING || s == EWTP_STORE_RETRYING ||
           s == EWTP_STORE_DEAD;
}

/* Message seq left the live states (full: or came back): its key's blocked flags follow,
 * under the key's exclusive lock (schema_v2). Nothing for a message without a key. */
static int key_changed(struct pconn *c, int64_t seq, bool full)
{
    struct prm p = {0};
    p_i64(&p, seq);
    int rc = xexec(c, Q_KEYQ_LOCK, &p, NULL);
    return rc < 0 ? rc : xexec(c, full ? Q_KEY_RECOMPUTE : Q_KEY_UNBLOCK, &p, NULL);
}

static int pg_record_outcome(void *impl, const struct ewtp_store_outcome *o)
{
    struct pg_store *ps = impl;
    struct pconn *c;
    json_t *d = NULL;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    struct prm p = {0};
    p_i64(&p, (int64_t)o->key);
    p_str(&p, sname(o->state));
    p_str(&p, o->authority_ref);
    p_i64(&p, o->state == EWTP_STORE_RETRYING    ? o->next_attempt_at
              : o->state == EWTP_STORE_SUBMITTED ? o->poll_at
                                                 : 0);
    p_str(&p, o->errors);
    p_i64(&p, o->now);
    p_i64(&p, o->attempt);
    p_str(&p, o->owner);
    if (o->owner)
        p_i64(&p, o->now);
    else
        p_str(&p, NULL);
    PGresult *u = NULL;
    rc = xsel(c, Q_OUTCOME, &p, &u);
    int64_t changed = rc == 0 ? PQntuples(u) : 0;
    bool keyed = changed == 1 && !PQgetisnull(u, 0, 0);
    PQclear(u);
    if (rc == 0 && keyed && !state_blocking(o->state))
        rc = key_changed(c, (int64_t)o->key, false);
    if (rc == 0 && changed == 0) {
        /* Not delivering under this attempt's lease (any more): someone else owns it. */
        enum ewtp_store_state cur;
        rc = find_seq(c, (int64_t)o->key, &cur, NULL);
        if (rc == 0)
            rc = -EWTP_EINVAL;
    }
    if (rc == 0 && o->chain)
        rc = chain_advance(c, o->chain, o->now);
    if (rc == 0 && (o->key_state || o->chain_first > 0))
        rc = key_state_put(c, o);
    if (rc == 0 && o->doc_ref) {
        /* The document's own id, one more reference of the message (store.h doc_ref). */
        struct prm q = {0};
        p_i64(&q, (int64_t)o->key);
        p_str(&q, o->doc_ref);
        PGresult *r = PQexecParams(c->pg,
                                   "INSERT INTO refs(plugin, ref, seq) SELECT plugin, $2, seq"
                                   " FROM messages WHERE seq = $1 ON CONFLICT DO NOTHING",
                                   q.n, NULL, q.v, q.len, q.fmt, 0);
        rc = res_rc(r, PGRES_COMMAND_OK);
        PQclear(r);
    }
    if (rc == 0 && o->receipt)
        rc = insert_receipt(c, (int64_t)o->key, o->now, o->receipt);
    if (rc == 0) {
        d = detail_new(o->detail);
        if (o->authority_ref)
            json_object_set_new(d, "authority_ref", json_string(o->authority_ref));
        if (o->state == EWTP_STORE_RETRYING)
            json_object_set_new(d, "next_attempt_at", time_json(o->next_attempt_at));
        if (o->errors)
            json_object_set_new(d, "errors", stored_json(o->errors));
        detail_receipt(d, o->receipt);
        detail_chain(d, o->chain);
        rc = insert_event(c, (int64_t)o->key, o->now, "outcome", o->state, o->attempt, d);
    }
    if (rc == 0 && o->webhook)
        rc = webhook_insert(c, (int64_t)o->key, o->state, o->now, o->now);
    if (rc == 0 && o->n_evidence)
        rc = insert_evidence(c, (int64_t)o->key, o->evidence, o->n_evidence, o->now);
    rc = finish(ps, c, rc);
    json_decref(d);
    return rc;
}

/* The message row locked for the rest of the transaction (receipts, ops, admin). */
static const char lock_seq_sql[] = "SELECT 1 FROM messages WHERE seq = $1 FOR UPDATE";

static int pg_record_receipt(void *impl, const struct ewtp_store_receipt_rec *r)
{
    struct pg_store *ps = impl;
    struct pconn *c;
    json_t *d = NULL;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    {
        char k[24];
        snprintf(k, sizeof(k), "%" PRId64, (int64_t)r->key);
        const char *v[1] = {k};
        PGresult *l = PQexecParams(c->pg, lock_seq_sql, 1, NULL, v, NULL, NULL, 0);
        rc = res_rc(l, PGRES_TUPLES_OK);
        PQclear(l);
    }
    enum ewtp_store_state cur = EWTP_STORE_ACCEPTED;
    int64_t attempts = 0;
    if (rc == 0)
        rc = find_seq(c, (int64_t)r->key, &cur, &attempts);
    bool uncancel =
        r->cancel_confirmed && r->state == EWTP_STORE_CANCELLED && cur == EWTP_STORE_APPROVED;
    bool change = rc == 0 && r->set_state && (!ewtp_store_state_terminal(cur) || uncancel);
    enum ewtp_store_state after = change ? r->state : cur;
    if (rc == 0 && r->chain)
        rc = chain_advance(c, r->chain, r->now);
    if (rc == 0 && change) {
        bool due = after == EWTP_STORE_ACCEPTED || after == EWTP_STORE_RETRYING;
        struct prm p = {0};
        p_i64(&p, (int64_t)r->key);
        p_str(&p, sname(after));
        p_i64(&p, due ? r->now : 0);
        p_i64(&p, r->now);
        rc = xexec(c, Q_SET_STATE, &p, NULL);
    }
    if (rc == 0 && change && state_blocking(cur) != state_blocking(after))
        rc = key_changed(c, (int64_t)r->key, true);
    if (rc == 0 && change && r->errors) {
        struct prm p = {0};
        p_i64(&p, (int64_t)r->key);
        p_str(&p, r->errors);
        rc = xexec(c, Q_SET_ERRORS, &p, NULL);
    }
    if (rc == 0) {
        struct prm p = {0};
        p_i64(&p, (int64_t)r->key);
        p_str(&p, r->authority_ref);
        p_i64(&p, r->now);
        rc = xexec(c, Q_SET_REF, &p, NULL);
    }
    if (rc == 0)
        rc = insert_receipt(c, (int64_t)r->key, r->now, r->receipt);
    if (rc == 0) {
        d = detail_new(r->detail);
        if (r->authority_ref)
            json_object_set_new(d, "authority_ref", json_string(r->authority_ref));
        if (r->set_state && !change)
            json_object_set_new(d, "ignored", json_true());
        detail_receipt(d, r->receipt);
        detail_chain(d, r->chain);
        rc = insert_event(c, (int64_t)r->key, r->now, "receipt", after, attempts, d);
    }
    if (rc == 0 && change && after != cur && r->webhook)
        rc = webhook_insert(c, (int64_t)r->key, after, r->now, r->now);
    rc = finish(ps, c, rc);
    json_decref(d);
    return rc;
}

static int pg_find_by_authority_ref(void *impl, const char *plugin, const char *ref,
                                    struct ewtp_store_msg **out)
{
    return get_one(impl, Q_BY_REF, plugin, ref, out);
}

static int pg_add_event(void *impl, uint64_t key, const char *type, uint32_t attempt,
                        const char *detail, int64_t now)
{
    struct pg_store *ps = impl;
    struct pconn *c;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    enum ewtp_store_state cur;
    rc = find_seq(c, (int64_t)key, &cur, NULL);
    if (rc == 0) {
        json_t *d = detail_new(detail);
        rc = insert_event(c, (int64_t)key, now, type, cur, attempt, d);
        json_decref(d);
    }
    return finish(ps, c, rc);
}

/* tenant/id with its row locked, in c's transaction. */
static int find_tid_locked(struct pconn *c, const char *tenant, const char *id, int64_t *seq,
                           enum ewtp_store_state *state, int64_t *attempts)
{
    int rc = find_tid(c, tenant, id, seq, state, attempts);
    if (rc < 0)
        return rc;
    char k[24];
    snprintf(k, sizeof(k), "%" PRId64, *seq);
    const char *v[1] = {k};
    PGresult *l = PQexecParams(c->pg, lock_seq_sql, 1, NULL, v, NULL, NULL, 0);
    rc = res_rc(l, PGRES_TUPLES_OK);
    PQclear(l);
    /* Read again under the lock: the state may have changed before we got it. */
    return rc < 0 ? rc : find_tid(c, tenant, id, seq, state, attempts);
}

static int admin_op(struct pg_store *ps, const char *tenant, const char *id, int64_t now,
                    enum ewtp_store_state need, enum sql update, const char *type,
                    enum ewtp_store_state after)
{
    struct pconn *c;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    int64_t seq = 0, attempts = 0;
    enum ewtp_store_state cur;
    rc = find_tid_locked(c, tenant, id, &seq, &cur, &attempts);
    if (rc == 0 && cur != need)
        rc = -EWTP_EINVAL;
    if (rc == 0) {
        struct prm p = {0};
        p_i64(&p, seq);
        p_i64(&p, now);
        rc = xexec(c, update, &p, NULL);
    }
    if (rc == 0) {
        json_t *d = json_pack("{s:I}", "previous_attempts", (json_int_t)attempts);
        rc = insert_event(c, seq, now, type, after, update == Q_REPLAY ? 0 : attempts, d);
        json_decref(d);
    }
    return finish(ps, c, rc);
}

static int pg_replay(void *impl, const char *tenant, const char *id, int64_t now)
{
    return admin_op(impl, tenant, id, now, EWTP_STORE_DEAD, Q_REPLAY, "replay",
                    EWTP_STORE_ACCEPTED);
}

static int pg_retry_now(void *impl, const char *tenant, const char *id, int64_t now)
{
    return admin_op(impl, tenant, id, now, EWTP_STORE_RETRYING, Q_RETRY_NOW, "retry_now",
                    EWTP_STORE_RETRYING);
}

/* A statement outside a transaction (autocommit) on a pool connection: 0 and *out. */
static int one_sel(struct pg_store *ps, enum sql id, const struct prm *p, PGresult **out)
{
    struct pconn *c = acquire(ps);
    int rc = conn_ready(c);
    if (rc == 0)
        rc = xsel(c, id, p, out);
    release(ps, c);
    return rc;
}

static int pg_chain_get(void *impl, const char *key, int64_t *number, char **ref)
{
    struct prm p = {0};
    p_str(&p, key);
    PGresult *r;
    *number = 0;
    int rc = one_sel(impl, Q_CHAIN_GET, &p, &r);
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 1) {
        *number = gi(r, 0, 0);
        if (ref && !PQgetisnull(r, 0, 1) && !(*ref = gs(r, 0, 1)))
            rc = -EWTP_ENOMEM;
    }
    PQclear(r);
    return rc;
}

static int pg_chain_set(void *impl, const char *key, int64_t last, const char *ref, int64_t now)
{
    struct prm p = {0};
    p_str(&p, key);
    p_i64(&p, last);
    p_str(&p, ref);
    p_i64(&p, now);
    PGresult *r;
    struct pg_store *ps = impl;
    struct pconn *c = acquire(ps);
    int rc = conn_ready(c);
    if (rc == 0) {
        r = xq(c, Q_CHAIN_PUT, &p);
        rc = res_rc(r, PGRES_COMMAND_OK);
        PQclear(r);
    }
    release(ps, c);
    return rc;
}

static int pg_key_state_get(void *impl, const char *key, void **data, size_t *len)
{
    struct prm p = {0};
    p_str(&p, key);
    PGresult *r;
    int rc = one_sel(impl, Q_KSTATE_GET, &p, &r);
    if (rc < 0)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return -EWTP_ENOTFOUND;
    }
    size_t n = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 0), &n);
    PQclear(r);
    if (!raw)
        return -EWTP_ENOMEM;
    char *copy = malloc(n + 1);
    if (copy) {
        memcpy(copy, raw, n);
        copy[n] = '\0';
        *data = copy;
        *len = n;
    }
    PQfreemem(raw);
    return copy ? 0 : -EWTP_ENOMEM;
}

/* keys as a PostgreSQL array literal {"a","b"} (quotes and backslashes escaped). */
static char *array_literal(const char *const *keys, size_t n)
{
    struct sbuf b = {0};
    sb_s(&b, "{");
    for (size_t i = 0; i < n; i++) {
        sb_s(&b, i ? ",\"" : "\"");
        for (const char *k = keys[i]; *k; k++) {
            if (*k == '"' || *k == '\\')
                sb_s(&b, "\\");
            sb_add(&b, k, 1);
        }
        sb_s(&b, "\"");
    }
    sb_s(&b, "}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static int pg_related(void *impl, const char *const *keys, size_t n, const char *exclude_tenant,
                      const char *exclude_id, struct ewtp_store_msg **out, size_t *n_out)
{
    char *arr = array_literal(keys, n);
    if (!arr)
        return -EWTP_ENOMEM;
    struct prm p = {0};
    p_str(&p, arr);
    p_str(&p, exclude_tenant);
    p_str(&p, exclude_id);
    PGresult *r;
    int rc = one_sel(impl, Q_RELATED, &p, &r);
    free(arr);
    if (rc < 0)
        return rc;
    rc = collect_msgs(r, RELATED_MAX, out, n_out);
    PQclear(r);
    return rc;
}

static int pg_counts(void *impl, struct ewtp_store_count **out, size_t *n)
{
    PGresult *r;
    int rc = one_sel(impl, Q_COUNTS, NULL, &r);
    if (rc < 0)
        return rc;
    int rows = PQntuples(r);
    struct ewtp_store_count *v = rows ? calloc((size_t)rows, sizeof(*v)) : NULL;
    size_t cnt = 0;
    if (rows && !v)
        rc = -EWTP_ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++) {
        v[cnt].plugin = gs(r, i, 0);
        v[cnt].state = gstate(r, i, 1);
        v[cnt].n = (uint64_t)gi(r, i, 2);
        if (!v[cnt++].plugin)
            rc = -EWTP_ENOMEM;
    }
    PQclear(r);
    if (rc < 0) {
        ewtp_store_counts_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int pg_backlog(void *impl, int64_t now, uint64_t *depth, int64_t *oldest_age_ms)
{
    PGresult *r;
    int rc = one_sel(impl, Q_BACKLOG, NULL, &r);
    if (rc < 0)
        return rc;
    *depth = (uint64_t)gi(r, 0, 0);
    *oldest_age_ms = PQgetisnull(r, 0, 1) ? 0 : now - gi(r, 0, 1);
    if (*oldest_age_ms < 0)
        *oldest_age_ms = 0;
    PQclear(r);
    return 0;
}

static int pg_claim_poll(void *impl, int64_t now, size_t limit, int64_t next_at,
                         struct ewtp_store_msg **out, size_t *n)
{
    struct prm p = {0};
    p_i64(&p, now);
    p_i64(&p, (int64_t)limit);
    p_i64(&p, next_at);
    PGresult *r;
    int rc = one_sel(impl, Q_POLL_CLAIM, &p, &r);
    if (rc < 0)
        return rc;
    *out = NULL;
    rc = collect_msgs(r, limit, out, n);
    PQclear(r);
    if (rc == 0 && *n > 1) {
        /* RETURNING has no order: oldest due first, as the contract says. */
        for (size_t i = 1; i < *n; i++)
            for (size_t j = i; j > 0; j--) {
                struct ewtp_store_msg *a = &(*out)[j - 1], *b = &(*out)[j];
                if (a->key < b->key)
                    break;
                struct ewtp_store_msg t = *a;
                *a = *b;
                *b = t;
            }
    }
    return rc;
}

static int pg_poll_schedule(void *impl, uint64_t key, int64_t at)
{
    struct pg_store *ps = impl;
    struct prm p = {0};
    p_i64(&p, (int64_t)key);
    p_i64(&p, at);
    struct pconn *c = acquire(ps);
    int rc = conn_ready(c);
    int64_t changed = 0;
    if (rc == 0)
        rc = xexec(c, Q_POLL_SET, &p, &changed);
    release(ps, c);
    return rc == 0 && changed == 0 ? -EWTP_EINVAL : rc;
}

/* ---- webhook outbox ----------------------------------------------------------------------- */

static int pg_webhook_enqueue(void *impl, uint64_t key, enum ewtp_store_state state, int64_t at,
                              int64_t now)
{
    struct pg_store *ps = impl;
    struct pconn *c;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    enum ewtp_store_state cur;
    rc = find_seq(c, (int64_t)key, &cur, NULL);
    if (rc == 0)
        rc = webhook_insert(c, (int64_t)key, state, at, now);
    return finish(ps, c, rc);
}

static int pg_webhook_claim(void *impl, int64_t now, size_t limit, int64_t lease_ms,
                            struct ewtp_store_webhook **out, size_t *n)
{
    struct prm p = {0};
    p_i64(&p, now);
    p_i64(&p, (int64_t)limit);
    p_i64(&p, now + lease_ms);
    PGresult *r;
    *out = NULL;
    *n = 0;
    int rc = one_sel(impl, Q_WH_CLAIM, &p, &r);
    if (rc < 0)
        return rc;
    int rows = PQntuples(r);
    struct ewtp_store_webhook *w = rows ? calloc((size_t)rows, sizeof(*w)) : NULL;
    size_t cnt = 0;
    if (rows && !w)
        rc = -EWTP_ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++) {
        struct ewtp_store_webhook *e = &w[cnt++];
        e->wid = (uint64_t)gi(r, i, 0);
        e->key = (uint64_t)gi(r, i, 1);
        e->tenant = gs(r, i, 2);
        e->id = gs(r, i, 3);
        e->state = gs(r, i, 4);
        e->at = gi(r, i, 5);
        e->attempts = (uint32_t)gi(r, i, 6);
        e->created_at = gi(r, i, 7);
        if (!e->tenant || !e->id || !e->state)
            rc = -EWTP_ENOMEM;
    }
    PQclear(r);
    if (rc < 0 || cnt == 0) {
        ewtp_store_webhooks_free(w, cnt);
        return rc;
    }
    *out = w;
    *n = cnt;
    return 0;
}

static int webhook_end(struct pg_store *ps, uint64_t wid, bool retry, int64_t next_at,
                       const char *error, bool give_up, int64_t now)
{
    struct pconn *c;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    struct prm p = {0};
    p_i64(&p, (int64_t)wid);
    PGresult *r;
    rc = xsel(c, Q_WH_GET, &p, &r);
    int64_t seq = 0, attempts = 0;
    enum ewtp_store_state state = EWTP_STORE_ACCEPTED;
    if (rc == 0) {
        if (PQntuples(r) == 1) {
            seq = gi(r, 0, 0);
            state = gstate(r, 0, 1);
            attempts = gi(r, 0, 2);
        } else {
            rc = -EWTP_ENOTFOUND;
        }
        PQclear(r);
    }
    if (rc == 0) {
        struct prm q = {0};
        p_i64(&q, (int64_t)wid);
        if (retry) {
            p_i64(&q, next_at);
            p_str(&q, error);
        }
        rc = xexec(c, retry ? Q_WH_RETRY : Q_WH_DELETE, &q, NULL);
    }
    if (rc == 0 && give_up) {
        enum ewtp_store_state cur;
        rc = find_seq(c, seq, &cur, NULL);
        json_t *d = rc == 0 ? json_pack("{s:s,s:I,s:s?}", "state", sname(state), "attempts",
                                        (json_int_t)attempts, "error", error)
                            : NULL;
        if (rc == 0 && !d)
            rc = -EWTP_ENOMEM;
        if (rc == 0)
            rc = insert_event(c, seq, now, "webhook_failed", cur, 0, d);
        json_decref(d);
    }
    return finish(ps, c, rc);
}

static int pg_webhook_done(void *impl, uint64_t wid)
{
    return webhook_end(impl, wid, false, 0, NULL, false, 0);
}

static int pg_webhook_retry(void *impl, uint64_t wid, int64_t next_at, const char *error)
{
    return webhook_end(impl, wid, true, next_at, error, false, 0);
}

static int pg_webhook_give_up(void *impl, uint64_t wid, const char *error, int64_t now)
{
    return webhook_end(impl, wid, false, 0, error, true, now);
}

static int count_one(struct pg_store *ps, enum sql id, uint64_t *n)
{
    PGresult *r;
    int rc = one_sel(ps, id, NULL, &r);
    if (rc < 0)
        return rc;
    *n = (uint64_t)gi(r, 0, 0);
    PQclear(r);
    return 0;
}

static int pg_webhook_pending(void *impl, uint64_t *n)
{
    return count_one(impl, Q_WH_COUNT, n);
}

/* ---- operations on a message ------------------------------------------------------------ */

static int pg_op_request(void *impl, const char *tenant, const char *id, const char *op,
                         const char *reason, int64_t now, bool *repeat,
                         enum ewtp_store_state *state)
{
    struct pg_store *ps = impl;
    struct pconn *c;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    int64_t seq = 0, attempts = 0;
    /* The message's row lock serialises two nodes recording the same operation. */
    rc = find_tid_locked(c, tenant, id, &seq, state, &attempts);
    if (rc == 0 && (*state == EWTP_STORE_REJECTED || *state == EWTP_STORE_CANCELLED))
        rc = -EWTP_EINVAL;
    if (rc == 0) {
        struct prm p = {0};
        p_i64(&p, seq);
        p_str(&p, op);
        PGresult *r;
        rc = xsel(c, Q_OP_LIVE, &p, &r);
        if (rc == 0) {
            *repeat = PQntuples(r) > 0;
            PQclear(r);
        }
    }
    if (rc == 0 && !*repeat) {
        struct prm p = {0};
        p_i64(&p, seq);
        p_str(&p, op);
        p_str(&p, reason);
        p_i64(&p, now);
        rc = xexec(c, Q_OP_INSERT, &p, NULL);
    }
    if (rc == 0 && !*repeat) {
        json_t *d = json_pack("{s:s?}", "reason", reason);
        char type[48];
        snprintf(type, sizeof(type), "%s_requested", op);
        rc = d ? insert_event(c, seq, now, type, *state, attempts, d) : -EWTP_ENOMEM;
        json_decref(d);
    }
    return finish(ps, c, rc);
}

static int load_op(struct pconn *c, int64_t oid, struct ewtp_store_op *o)
{
    struct prm p = {0};
    p_i64(&p, oid);
    PGresult *r;
    int rc = xsel(c, Q_OP_GET, &p, &r);
    if (rc < 0)
        return rc;
    int64_t seq = 0;
    if (PQntuples(r) != 1) {
        rc = -EWTP_EIO;
    } else {
        o->oid = (uint64_t)gi(r, 0, 0);
        seq = gi(r, 0, 1);
        o->op = gs(r, 0, 2);
        o->reason = gs(r, 0, 3);
        o->attempts = (uint32_t)gi(r, 0, 4);
        o->created_at = gi(r, 0, 5);
        if (!o->op || !gs_ok(r, 0, 3, o->reason))
            rc = -EWTP_ENOMEM;
    }
    PQclear(r);
    if (rc < 0)
        return rc;
    struct prm q = {0};
    p_i64(&q, seq);
    rc = xsel(c, Q_MSG_BY_SEQ, &q, &r);
    if (rc < 0)
        return rc;
    rc = PQntuples(r) == 1 ? row_msg(r, 0, &o->msg) : -EWTP_EIO;
    PQclear(r);
    return rc;
}

static int pg_op_claim(void *impl, int64_t now, size_t limit, int64_t lease_ms, const char *owner,
                       struct ewtp_store_op **out, size_t *n)
{
    struct pg_store *ps = impl;
    struct pconn *c;
    struct ewtp_store_op *ops = NULL;
    size_t cnt = 0;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    struct prm p = {0};
    p_i64(&p, now);
    p_i64(&p, (int64_t)limit);
    p_str(&p, owner);
    p_i64(&p, now + lease_ms);
    PGresult *r = NULL;
    rc = xsel(c, Q_OP_CLAIM, &p, &r);
    int rows = rc == 0 ? PQntuples(r) : 0;
    if (rows > 0 && !(ops = calloc((size_t)rows, sizeof(*ops))))
        rc = -EWTP_ENOMEM;
    /* RETURNING has no order: take them oldest first. */
    int64_t *oids = rows > 0 ? calloc((size_t)rows, sizeof(*oids)) : NULL;
    if (rows > 0 && !oids)
        rc = -EWTP_ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++) {
        int64_t v = gi(r, i, 0);
        int j = i;
        while (j > 0 && oids[j - 1] > v) {
            oids[j] = oids[j - 1];
            j--;
        }
        oids[j] = v;
    }
    PQclear(r);
    for (int i = 0; rc == 0 && i < rows; i++) {
        rc = load_op(c, oids[i], &ops[cnt]);
        cnt++;
        if (rc == 0) {
            json_t *d = json_pack("{s:s,s:s}", "op", ops[cnt - 1].op, "owner", owner);
            rc = d ? insert_event(c, (int64_t)ops[cnt - 1].msg.key, now, "op_claimed",
                                  ops[cnt - 1].msg.state, ops[cnt - 1].attempts, d)
                   : -EWTP_ENOMEM;
            json_decref(d);
        }
    }
    free(oids);
    rc = finish(ps, c, rc);
    if (rc < 0) {
        ewtp_store_ops_free(ops, cnt);
        return rc;
    }
    if (cnt == 0) {
        free(ops);
        ops = NULL;
    }
    *out = ops;
    *n = cnt;
    return 0;
}

static int pg_op_finish(void *impl, uint64_t oid, uint32_t attempt, enum ewtp_store_op_end end,
                        int64_t next_at, const char *detail, int64_t now)
{
    static const char *const states[] = {"done", "pending", "failed"};
    static const char *const events[] = {"op_done", "op_retry", "op_failed"};
    struct pg_store *ps = impl;
    struct pconn *c;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    struct prm p = {0};
    p_i64(&p, (int64_t)oid);
    p_i64(&p, attempt);
    p_str(&p, states[end]);
    p_i64(&p, next_at);
    p_i64(&p, now);
    PGresult *r;
    rc = xsel(c, Q_OP_FINISH, &p, &r);
    int64_t seq = 0;
    if (rc == 0) {
        if (PQntuples(r) == 1)
            seq = gi(r, 0, 0);
        else
            rc = -EWTP_EINVAL; /* the lease was lost: another claim owns it now */
        PQclear(r);
    }
    enum ewtp_store_state cur = EWTP_STORE_ACCEPTED;
    if (rc == 0)
        rc = find_seq(c, seq, &cur, NULL);
    if (rc == 0) {
        json_t *d = detail_new(detail);
        if (end == EWTP_STORE_OP_RETRY)
            json_object_set_new(d, "next_at", time_json(next_at));
        rc = insert_event(c, seq, now, events[end], cur, attempt, d);
        json_decref(d);
    }
    return finish(ps, c, rc);
}

static int pg_ops_pending(void *impl, uint64_t *n)
{
    return count_one(impl, Q_OP_COUNT, n);
}

/* ---- evidence (store.h) -------------------------------------------------------------------- */

static int pg_evidence_add(void *impl, uint64_t key, const struct ewtp_store_evidence *e, size_t n,
                           int64_t now)
{
    struct pg_store *ps = impl;
    struct pconn *c;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    enum ewtp_store_state st;
    rc = find_seq(c, (int64_t)key, &st, NULL);
    if (rc == 0)
        rc = insert_evidence(c, (int64_t)key, e, n, now);
    return finish(ps, c, rc);
}

static int pg_evidence_get(void *impl, const char *tenant, const char *id,
                           struct ewtp_store_evidence_row **out, size_t *n)
{
    struct pg_store *ps = impl;
    struct pconn *c;
    struct ewtp_store_evidence_row *v = NULL;
    size_t cnt = 0;
    int rc = begin_read(ps, &c);
    if (rc == 0) {
        int64_t seq = 0;
        enum ewtp_store_state st;
        rc = find_tid(c, tenant, id, &seq, &st, NULL);
        PGresult *r = NULL;
        if (rc == 0) {
            struct prm p = {0};
            p_i64(&p, seq);
            rc = xsel(c, Q_EV_GET, &p, &r);
        }
        if (rc == 0) {
            int rows = PQntuples(r);
            if (rows > 0 && !(v = calloc((size_t)rows, sizeof(*v))))
                rc = -EWTP_ENOMEM;
            for (int i = 0; rc == 0 && i < rows; i++) {
                struct ewtp_store_evidence_row *e = &v[cnt++];
                e->at = gi(r, i, 0);
                e->kind = gs(r, i, 1);
                e->name = gs(r, i, 2);
                e->meta = gs(r, i, 3);
                size_t len = 0;
                unsigned char *raw =
                    PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 4), &len);
                /* NUL-terminated beyond body_len, as SQLite's rows are. */
                e->body = raw ? malloc(len + 1) : NULL;
                if (e->body) {
                    memcpy(e->body, raw, len);
                    e->body[len] = 0;
                    e->body_len = len;
                }
                PQfreemem(raw);
                if (!e->kind || !e->name || !gs_ok(r, i, 3, e->meta) || !e->body)
                    rc = -EWTP_ENOMEM;
            }
            PQclear(r);
        }
        finish(ps, c, 0);
    }
    if (rc < 0) {
        ewtp_store_evidence_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int pg_evidence_purge(void *impl, int64_t before, uint64_t *n)
{
    struct pg_store *ps = impl;
    struct prm p = {0};
    p_i64(&p, before);
    int64_t changed = 0;
    struct pconn *c = acquire(ps);
    int rc = conn_ready(c);
    if (rc == 0)
        rc = xexec(c, Q_EV_PURGE, &p, &changed);
    release(ps, c);
    *n = rc == 0 ? (uint64_t)changed : 0;
    return rc;
}

static int pg_evidence_bytes(void *impl, uint64_t *bytes)
{
    return count_one(impl, Q_EV_BYTES, bytes);
}

/* The instance secret, in a table of its own created on first use (no schema version: it
 * needs no upgrade step). An advisory lock makes nodes that ask at once take turns, so the
 * first one's secret is the one every node reads. */
#define INSTANCE_KEY_LOCK "7657747001" /* any constant of our own */
static int pg_instance_key(void *impl, const unsigned char fresh[32], unsigned char out[32])
{
    struct pg_store *ps = impl;
    struct pconn *c;
    int rc = begin(ps, &c);
    if (rc < 0)
        return rc;
    PGresult *lr = PQexec(c->pg, "SELECT pg_advisory_xact_lock(" INSTANCE_KEY_LOCK ")");
    rc = res_rc(lr, PGRES_TUPLES_OK);
    PQclear(lr);
    if (rc == 0)
        rc = simple(c, "CREATE TABLE IF NOT EXISTS instance_secret(id integer PRIMARY KEY"
                       " CHECK (id = 1), secret bytea NOT NULL)");
    if (rc == 0) {
        const char *v[1] = {(const char *)fresh};
        int len[1] = {32}, fmt[1] = {1};
        PGresult *r = PQexecParams(c->pg,
                                   "INSERT INTO instance_secret(id, secret) VALUES(1, $1)"
                                   " ON CONFLICT (id) DO NOTHING",
                                   1, NULL, v, len, fmt, 0);
        rc = res_rc(r, PGRES_COMMAND_OK);
        PQclear(r);
    }
    if (rc == 0) {
        PGresult *r = PQexecParams(c->pg, "SELECT secret FROM instance_secret WHERE id = 1", 0,
                                   NULL, NULL, NULL, NULL, 1);
        rc = res_rc(r, PGRES_TUPLES_OK);
        if (rc == 0 && (PQntuples(r) != 1 || PQgetlength(r, 0, 0) != 32))
            rc = -EWTP_EIO;
        if (rc == 0)
            memcpy(out, PQgetvalue(r, 0, 0), 32);
        PQclear(r);
    }
    return finish(ps, c, rc);
}

/* ---- open and close ----------------------------------------------------------------------- */

static void pg_close(void *impl)
{
    struct pg_store *ps = impl;
    if (!ps)
        return;
    if (ps->w.pg)
        PQfinish(ps->w.pg);
    for (size_t i = 0; i < ps->n_pool; i++)
        if (ps->pool[i].pg)
            PQfinish(ps->pool[i].pg);
    free(ps->pool);
    pthread_mutex_destroy(&ps->mu);
    pthread_cond_destroy(&ps->cv);
    free(ps->conninfo);
    free(ps);
}

/* The first line of a libpq error, without its newline. */
static char *pg_err(PGconn *pg)
{
    const char *m = pg ? PQerrorMessage(pg) : "out of memory";
    size_t n = strcspn(m, "\n");
    return ewtp_store_asprintf("%.*s", (int)n, m);
}

static int conn_open(struct pconn *c, const char *conninfo, const char *what, char **why)
{
    c->pg = PQconnectdb(conninfo);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        if (why) {
            char *e = pg_err(c->pg);
            *why = ewtp_store_asprintf("store: cannot connect to PostgreSQL (%s): %s", what,
                                       e ? e : "?");
            free(e);
        }
        return -EWTP_EIO;
    }
    /* Times are ours (ms since the epoch), text is UTF-8; keep the session predictable. */
    PGresult *r = PQexec(c->pg, "SET client_encoding = 'UTF8'; SET client_min_messages = warning");
    PQclear(r);
    return 0;
}

/* Applies the migrations this database lacks, under a transaction-level advisory lock so that
 * nodes starting together take turns; refuses a newer schema. */
static int schema_setup(struct pconn *c, char **why)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%d, 0);", LOCK_MIGRATE);
    PGresult *r = PQexec(c->pg, sql);
    int rc = res_rc(r, PGRES_TUPLES_OK);
    PQclear(r);
    if (rc == 0)
        rc = simple(c, "CREATE TABLE IF NOT EXISTS schema_version(version integer NOT NULL)");
    int64_t version = 0;
    if (rc == 0) {
        r = PQexec(c->pg, "SELECT coalesce(max(version), 0) FROM schema_version");
        rc = res_rc(r, PGRES_TUPLES_OK);
        if (rc == 0)
            version = gi(r, 0, 0);
        PQclear(r);
    }
    if (rc == 0 && version > SCHEMA_VERSION) {
        if (why)
            *why = ewtp_store_asprintf("store: the PostgreSQL database has schema version %" PRId64
                                       ", newer than this ewtpd understands (%d); run the newer "
                                       "ewtpd or restore a matching backup",
                                       version, SCHEMA_VERSION);
        simple(c, "ROLLBACK");
        return -EWTP_EUNSUPP;
    }
    const char *failed_sql = NULL;
    for (int64_t v = version + 1; rc == 0 && v <= SCHEMA_VERSION; v++) {
        rc = simple(c, migrations[v]);
        if (rc == 0) {
            char ins[96];
            snprintf(ins, sizeof(ins), "INSERT INTO schema_version(version) VALUES(%" PRId64 ")",
                     v);
            rc = simple(c, ins);
        } else {
            failed_sql = "migration";
        }
    }
    if (rc == 0)
        rc = simple(c, "COMMIT");
    if (rc < 0) {
        if (why && !*why) {
            char *e = pg_err(c->pg);
            *why = ewtp_store_asprintf("store: cannot create the PostgreSQL schema%s%s: %s",
                                       failed_sql ? " " : "", failed_sql ? failed_sql : "",
                                       e ? e : "?");
            free(e);
        }
        if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            simple(c, "ROLLBACK");
    }
    return rc;
}

static const struct ewtp_store_ops pg_ops = {
    .name = "postgresql",
    .batch_begin = pg_batch_begin,
    .batch_accept = pg_batch_accept,
    .batch_commit = pg_batch_commit,
    .batch_rollback = pg_batch_rollback,
    .get = pg_get,
    .status_get = pg_status_get,
    .events = pg_events,
    .list = pg_list,
    .claim_due = pg_claim_due,
    .requeue_expired = pg_requeue_expired,
    .record_outcome = pg_record_outcome,
    .record_receipt = pg_record_receipt,
    .find_by_authority_ref = pg_find_by_authority_ref,
    .add_event = pg_add_event,
    .replay = pg_replay,
    .retry_now = pg_retry_now,
    .chain_get = pg_chain_get,
    .chain_set = pg_chain_set,
    .key_state_get = pg_key_state_get,
    .related = pg_related,
    .counts = pg_counts,
    .backlog = pg_backlog,
    .claim_poll = pg_claim_poll,
    .poll_schedule = pg_poll_schedule,
    .webhook_enqueue = pg_webhook_enqueue,
    .webhook_claim = pg_webhook_claim,
    .webhook_done = pg_webhook_done,
    .webhook_retry = pg_webhook_retry,
    .webhook_give_up = pg_webhook_give_up,
    .webhook_pending = pg_webhook_pending,
    .op_request = pg_op_request,
    .op_claim = pg_op_claim,
    .op_finish = pg_op_finish,
    .ops_pending = pg_ops_pending,
    .evidence_add = pg_evidence_add,
    .evidence_get = pg_evidence_get,
    .evidence_purge = pg_evidence_purge,
    .evidence_bytes = pg_evidence_bytes,
    .instance_key = pg_instance_key,
    .close = pg_close,
};

int ewtp_store_open_pg(const char *conninfo, size_t pool_size, const struct ewtp_store_opts *opts,
                       struct ewtp_store **out, char **why)
{
    if (why)
        *why = NULL;
    if (!conninfo || !out)
        return -EWTP_EINVAL;
    if (pool_size == 0)
        pool_size = POOL_DEFAULT;
    if (pool_size > POOL_MAX)
        pool_size = POOL_MAX;
    struct pg_store *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return -EWTP_ENOMEM;
    pthread_mutex_init(&ps->mu, NULL);
    pthread_cond_init(&ps->cv, NULL);
    ps->conninfo = strdup(conninfo);
    ps->pool = calloc(pool_size, sizeof(*ps->pool));
    int rc = ps->conninfo && ps->pool ? 0 : -EWTP_ENOMEM;
    if (rc == 0)
        ps->n_pool = pool_size;
    if (rc == 0)
        rc = conn_open(&ps->w, conninfo, "writer", why);
    if (rc == 0)
        rc = schema_setup(&ps->w, why);
    for (size_t i = 0; rc == 0 && i < pool_size; i++)
        rc = conn_open(&ps->pool[i], conninfo, "pool", why);
    if (rc == 0 && opts && opts->busy_timeout_ms > 0) {
        /* A lock held elsewhere longer than this fails the call instead of hanging it. */
        char sql[64];
        snprintf(sql, sizeof(sql), "SET lock_timeout = %d", opts->busy_timeout_ms);
        simple(&ps->w, sql);
        for (size_t i = 0; i < pool_size; i++)
            simple(&ps->pool[i], sql);
    }
    if (rc < 0) {
        pg_close(ps);
        return rc;
    }
    return ewtp_store_new(&pg_ops, ps, opts, out, why);
}

int ewtp_store_pg_conninfo_check(const char *conninfo, char **why)
{
    if (why)
        *why = NULL;
    char *err = NULL;
    PQconninfoOption *o = PQconninfoParse(conninfo, &err);
    if (!o) {
        if (why) {
            size_t n = err ? strcspn(err, "\n") : 0;
            *why = ewtp_store_asprintf("not a libpq connection string: %.*s", (int)n,
                                       err ? err : "out of memory");
        }
        PQfreemem(err);
        return -EWTP_EINVAL;
    }
    PQconninfoFree(o);
    return 0;
}

int ewtp_store_pg_conninfo_read(const char *file, char **conninfo, char **why)
{
    *conninfo = NULL;
    if (why)
        *why = NULL;
    FILE *fp = fopen(file, "r");
    if (!fp) {
        if (why)
            *why = ewtp_store_asprintf("store: cannot read %s: %s", file, strerror(errno));
        return -EWTP_EIO;
    }
    char *buf = calloc(1, 64 * 1024 + 1);
    size_t n = buf ? fread(buf, 1, 64 * 1024, fp) : 0;
    fclose(fp);
    if (!buf)
        return -EWTP_ENOMEM;
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    char *err = NULL;
    int rc = ewtp_store_pg_conninfo_check(buf, &err);
    if (rc < 0) {
        if (why)
            *why = ewtp_store_asprintf("store: %s: %s", file, err ? err : "?");
        free(err);
        free(buf);
        return rc;
    }
    *conninfo = buf;
    return 0;
}

/* ---- import of a SQLite store (ewtpctl migrate-store) ------------------------------------ */

/* The tables in the order their foreign keys need, with their columns: i integer, t text,
 * b blob. Every column of the SQLite schema version 5, and version 7's evidence (last: a file
 * of version 5 or 6 has none). */
static const struct {
    const char *table;
    const char *cols;
    const char *types;
    const char *serial; /* the bigserial column whose sequence follows the copy, or NULL */
} import_tables[] = {
    {"messages",
     "seq, tenant, id, kind, destination, plugin, state, attempts, next_attempt_at,"
     " authority_ref, hash, canonical, body, ordering_key, batch_key, needs_chain, warnings,"
     " errors, lease_owner, lease_until, created_at, updated_at, wait_key, wait_state, wait_until",
     "ittttttiitttbttitttiiitti", "seq"},
    {"relations", "key, seq", "ti", NULL},
    {"events", "eid, seq, at, type, state, attempt, detail", "iiittit", "eid"},
    {"receipts", "rid, seq, at, state, code, message, raw", "iiitttb", "rid"},
    {"chains", "key, number, authority_ref, updated_at", "titi", NULL},
    {"refs", "plugin, ref, seq", "tti", NULL},
    {"webhooks", "wid, seq, state, at, attempts, next_at, last_error, created_at", "iitiiiti",
     "wid"},
    {"ops",
     "oid, seq, op, reason, state, attempts, next_at, lease_owner, lease_until, created_at,"
     " updated_at",
     "iitttiitiii", "oid"},
    {"key_states", "key, state, updated_at", "tbi", NULL},
    {"evidence", "eid, seq, at, kind, name, meta, body", "iiitttb", "eid"},
};
#define IMPORT_EVIDENCE (sizeof(import_tables) / sizeof(import_tables[0]) - 1)

/* Appends text as a COPY text-format field (backslash escapes). */
static void copy_text(struct sbuf *b, const unsigned char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = s[i] == '\\'   ? "\\\\"
                        : s[i] == '\n' ? "\\n"
                        : s[i] == '\r' ? "\\r"
                        : s[i] == '\t' ? "\\t"
                                       : NULL;
        if (e) {
            sb_add(b, (const char *)s + start, i - start);
            sb_s(b, e);
            start = i + 1;
        }
    }
    sb_add(b, (const char *)s + start, n - start);
}

/* One table from the SQLite file into the open COPY of the PostgreSQL connection. */
static int import_table(sqlite3 *db, PGconn *pg, size_t t, uint64_t *rows, char **why)
{
    const char *types = import_tables[t].types;
    size_t ncols = strlen(types);
    char *q = ewtp_store_asprintf("SELECT %s FROM %s ORDER BY rowid", import_tables[t].cols,
                                  import_tables[t].table);
    char *copy = ewtp_store_asprintf("COPY %s(%s) FROM STDIN", import_tables[t].table,
                                     import_tables[t].cols);
    sqlite3_stmt *s = NULL;
    int rc = q && copy ? 0 : -EWTP_ENOMEM;
    if (rc == 0 && sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK) {
        /* WITHOUT ROWID tables (relations, refs) are ordered by their key. */
        free(q);
        q = ewtp_store_asprintf("SELECT %s FROM %s", import_tables[t].cols, import_tables[t].table);
        if (!q || sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK) {
            if (why)
                *why = ewtp_store_asprintf("reading %s: %s", import_tables[t].table,
                                           sqlite3_errmsg(db));
            rc = -EWTP_EIO;
        }
    }
    PGresult *r = rc == 0 ? PQexec(pg, copy) : NULL;
    if (rc == 0 && PQresultStatus(r) != PGRES_COPY_IN) {
        if (why) {
            char *e = pg_err(pg);
            *why = ewtp_store_asprintf("COPY %s: %s", import_tables[t].table, e ? e : "?");
            free(e);
        }
        rc = -EWTP_EIO;
    }
    PQclear(r);
    struct sbuf b = {0};
    int x = SQLITE_DONE;
    while (rc == 0 && (x = sqlite3_step(s)) == SQLITE_ROW) {
        for (size_t c = 0; c < ncols; c++) {
            if (c)
                sb_s(&b, "\t");
            int ct = sqlite3_column_type(s, (int)c);
            if (ct == SQLITE_NULL) {
                sb_s(&b, "\\N");
            } else if (types[c] == 'i') {
                sb_i64(&b, sqlite3_column_int64(s, (int)c));
            } else if (types[c] == 't') {
                const unsigned char *v = sqlite3_column_text(s, (int)c);
                copy_text(&b, v, (size_t)sqlite3_column_bytes(s, (int)c));
            } else {
                const unsigned char *v = sqlite3_column_blob(s, (int)c);
                size_t n = (size_t)sqlite3_column_bytes(s, (int)c);
                static const char hex[] = "0123456789abcdef";
                sb_s(&b, "\\\\x");
                for (size_t i = 0; i < n; i++) {
                    char two[2] = {hex[v[i] >> 4], hex[v[i] & 15]};
                    sb_add(&b, two, 2);
                }
            }
        }
        sb_s(&b, "\n");
        (*rows)++;
        if (b.oom) {
            rc = -EWTP_ENOMEM;
        } else if (b.n > 256 * 1024) {
            if (PQputCopyData(pg, b.p, (int)b.n) != 1)
                rc = -EWTP_EIO;
            b.n = 0;
        }
    }
    if (rc == 0 && x != SQLITE_DONE) {
        if (why)
            *why =
                ewtp_store_asprintf("reading %s: %s", import_tables[t].table, sqlite3_errmsg(db));
        rc = -EWTP_EIO;
    }
    if (rc == 0 && b.n && PQputCopyData(pg, b.p, (int)b.n) != 1)
        rc = -EWTP_EIO;
    if (s)
        sqlite3_finalize(s);
    free(b.p);
    free(q);
    free(copy);
    if (PQputCopyEnd(pg, rc == 0 ? NULL : "aborted") != 1 && rc == 0)
        rc = -EWTP_EIO;
    while ((r = PQgetResult(pg)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0) {
            if (why && !*why) {
                char *e = pg_err(pg);
                *why = ewtp_store_asprintf("COPY %s: %s", import_tables[t].table, e ? e : "?");
                free(e);
            }
            rc = -EWTP_EIO;
        }
        PQclear(r);
    }
    return rc;
}

/* The SQLite file's instance secret (store.h ewtp_store_instance_key), when it has one, into
 * the PostgreSQL store in the import's transaction, replacing one a node may have generated
 * there: the copied messages' copNos and the cursors given out stay those of the secret they
 * were derived with (a message sent once and retried after the move must keep its copNo). */
static int import_instance_secret(sqlite3 *db, PGconn *pg)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT secret FROM instance_secret WHERE id = 1", -1, &s, NULL) !=
        SQLITE_OK) {
        sqlite3_finalize(s);
        return 0; /* no such table: the file never had a secret */
    }
    int rc = 0;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 32) {
        PGresult *r = PQexec(pg, "CREATE TABLE IF NOT EXISTS instance_secret(id integer PRIMARY"
                                 " KEY CHECK (id = 1), secret bytea NOT NULL)");
        rc = res_rc(r, PGRES_COMMAND_OK);
        PQclear(r);
        if (rc == 0) {
            const char *v[1] = {(const char *)sqlite3_column_blob(s, 0)};
            int len[1] = {32}, fmt[1] = {1};
            r = PQexecParams(pg,
                             "INSERT INTO instance_secret(id, secret) VALUES(1, $1)"
                             " ON CONFLICT (id) DO UPDATE SET secret = excluded.secret",
                             1, NULL, v, len, fmt, 0);
            rc = res_rc(r, PGRES_COMMAND_OK);
            PQclear(r);
        }
    }
    sqlite3_finalize(s);
    return rc;
}

int ewtp_store_pg_import_sqlite(const char *path, const char *conninfo, bool without_evidence,
                                uint64_t *rows, uint64_t *evidence_left, char **why)
{
    if (why)
        *why = NULL;
    *rows = 0;
    *evidence_left = 0;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        if (why)
            *why = ewtp_store_asprintf("cannot open %s: %s", path,
                                       db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -EWTP_EIO;
    }
    sqlite3_busy_timeout(db, 5000);
    int rc = 0;
    sqlite3_stmt *s = NULL;
    int64_t version = -1;
    if (sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &s, NULL) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    /* Version 6 only adds a column derived from the others (SQLite's claim index); version 7
     * the evidence table (issue 18), copied like the others unless without_evidence; version
     * 8 only rewrites an index and triggers (issue 20). */
    int64_t evidence = 0;
    if (version >= 7 &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM evidence", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        evidence = sqlite3_column_int64(s, 0);
    if (version >= 7)
        sqlite3_finalize(s);
    if (version < 5 || version > 8) {
        if (why)
            *why = ewtp_store_asprintf(
                "%s has store schema version %" PRId64 ", this ewtpctl copies versions 5 to 8: "
                "start this version's ewtpd on it once (it upgrades the file), stop it, retry",
                path, version);
        sqlite3_close(db);
        return -EWTP_EUNSUPP;
    }
    bool copy_evidence = version >= 7 && !without_evidence;
    *evidence_left = without_evidence && evidence > 0 ? (uint64_t)evidence : 0;
    struct pconn c = {0};
    rc = conn_open(&c, conninfo, "migrate-store", why);
    if (rc == 0)
        rc = schema_setup(&c, why);
    /* One transaction for everything: a failure leaves the target as it was. The read
     * transaction on the file gives one snapshot of it. */
    if (rc == 0)
        rc = simple(&c, "BEGIN");
    if (rc == 0 && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        rc = -EWTP_EIO;
    if (rc == 0) {
        PGresult *r = PQexec(c.pg, "LOCK TABLE messages, chains, key_states IN EXCLUSIVE MODE;"
                                   " SELECT (SELECT count(*) FROM messages)"
                                   " + (SELECT count(*) FROM chains)"
                                   " + (SELECT count(*) FROM key_states)");
        rc = res_rc(r, PGRES_TUPLES_OK);
        if (rc == 0 && gi(r, 0, 0) != 0) {
            if (why)
                *why = ewtp_store_asprintf(
                    "the PostgreSQL store is not empty (%s rows in messages, chains and "
                    "key_states): migrate-store only fills a new database",
                    PQgetvalue(r, 0, 0));
            rc = -EWTP_EINVAL;
        }
        PQclear(r);
    }
    for (size_t t = 0; rc == 0 && t < sizeof(import_tables) / sizeof(import_tables[0]); t++)
        if (t != IMPORT_EVIDENCE || copy_evidence)
            rc = import_table(db, c.pg, t, rows, why);
    if (rc == 0) {
        /* What a claim may take (schema_v2), from the copied states. */
        PGresult *r = PQexec(c.pg, "UPDATE messages m SET blocked = true WHERE ordering_key IS"
                                   " NOT NULL AND state IN " BLOCKING_STATES " AND EXISTS(SELECT"
                                   " 1 FROM messages p WHERE p.ordering_key = m.ordering_key"
                                   " AND p.state IN " BLOCKING_STATES " AND p.seq < m.seq)");
        rc = res_rc(r, PGRES_COMMAND_OK);
        PQclear(r);
    }
    for (size_t t = 0; rc == 0 && t < sizeof(import_tables) / sizeof(import_tables[0]); t++) {
        if (!import_tables[t].serial)
            continue;
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT setval(pg_get_serial_sequence('%s', '%s'),"
                 " coalesce((SELECT max(%s) FROM %s), 0) + 1, false)",
                 import_tables[t].table, import_tables[t].serial, import_tables[t].serial,
                 import_tables[t].table);
        PGresult *r = PQexec(c.pg, sql);
        rc = res_rc(r, PGRES_TUPLES_OK);
        PQclear(r);
    }
    if (rc == 0)
        rc = import_instance_secret(db, c.pg);
    if (rc == 0)
        rc = simple(&c, "COMMIT");
    if (rc < 0 && c.pg && why && !*why) {
        char *e = pg_err(c.pg);
        *why = ewtp_store_asprintf("PostgreSQL: %s", e ? e : "?");
        free(e);
    }
    if (c.pg)
        PQfinish(c.pg); /* an open transaction is rolled back */
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    if (rc < 0)
        *rows = 0;
    return rc;
}
