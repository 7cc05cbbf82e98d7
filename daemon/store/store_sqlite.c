/* store_sqlite.c — the SQLite backend of the message store (see store.h).
 *
 * Two connections to one WAL database: the writer thread's (group-committed accepts) and a
 * shared one, serialised by a mutex, for everything else. SQLite allows one writer at a
 * time, so each write transaction starts with BEGIN IMMEDIATE (takes the write lock up front
 * instead of failing half way on upgrade) and waits for the other connection through
 * busy_timeout. A call that returned success survives a crash or power loss: the writer's
 * connection (group-committed accepts) is synchronous=FULL, every COMMIT an fsync of the WAL;
 * the shared connection commits with synchronous=NORMAL (no fsync in the COMMIT) and its caller
 * then waits, outside the connection's mutex, for an fdatasync of the WAL file that began after
 * its commit (struct wal_sync): with FULL, each delivery's outcome, receipt and claim held the
 * mutex through an fsync of its own, so every other write waited in line (issue 20); now the
 * transactions that commit while one fdatasync runs share the next one. Both are the same
 * guarantee: in WAL mode FULL differs from NORMAL only by that fsync after the commit's frames.
 */
#include "store_backend.h"
#include "store_sqlite.h"

#include "groupsync.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include <ewtp/errors.h>

#define SCHEMA_VERSION 8
#define RELATED_MAX 100
#define RELATED_PER_TENANT_SQL "16" /* per relation key and tenant (Q_RELATED) */
#define LIST_DEFAULT 100
#define LIST_MAX 1000
#define READERS 4             /* read connections for API requests (struct sqlite_store) */
#define CHECKPOINT_PAGES 1000 /* WAL pages that wake the checkpointer (SQLite's default) */

/* Blocking ("live") states of an ordering key: while an earlier message is in one of these,
 * later ones wait (store.h, ewtp_store_claim_due). The same expression is the partial index'
 * WHERE, so the NOT EXISTS probe reads only live messages of the key, never the key's whole
 * history; a query must spell it exactly so for SQLite to use that index. Comparisons, not
 * `IN (...)`: schema version 8. */
#define LIVE_STATE_OF(col)                                                                         \
    "(" col " = 'accepted' OR " col " = 'delivering' OR " col " = 'retrying' OR " col " = 'dead')"
#define LIVE_STATE LIVE_STATE_OF("state")
#define LIVE_P LIVE_STATE_OF("p.state")
#define LIVE_N LIVE_STATE_OF("n.state")
#define LIVE_NEW LIVE_STATE_OF("new.state")
#define LIVE_OLD LIVE_STATE_OF("old.state")

/* Version 2: every authority reference a message ever had stays findable. Authorities
 * change the reference during a message's life (China: the enterprise copNo, then the
 * customs invtNo from the 622 receipt), and later receipts may quote either. */
#define SCHEMA_V2_SQL                                                                              \
    "CREATE TABLE IF NOT EXISTS refs(plugin TEXT NOT NULL, ref TEXT NOT NULL,"                     \
    " seq INTEGER NOT NULL REFERENCES messages(seq), PRIMARY KEY(plugin, ref, seq))"               \
    " WITHOUT ROWID;"                                                                              \
    "CREATE TRIGGER IF NOT EXISTS messages_ref_alias AFTER UPDATE OF authority_ref ON messages"    \
    " WHEN new.authority_ref IS NOT NULL BEGIN"                                                    \
    " INSERT OR IGNORE INTO refs(plugin, ref, seq)"                                                \
    " VALUES(new.plugin, new.authority_ref, new.seq); END;"

/* Version 3: the webhook outbox. A state change queues its webhook in the same transaction,
 * and the row stays until the receiver took it or it was given up, so webhooks survive a
 * restart (store.h, "webhook outbox"). */
#define SCHEMA_V3_SQL                                                                              \
    "CREATE TABLE IF NOT EXISTS webhooks(wid INTEGER PRIMARY KEY AUTOINCREMENT,"                   \
    " seq INTEGER NOT NULL REFERENCES messages(seq), state TEXT NOT NULL, at INTEGER NOT NULL,"    \
    " attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_error TEXT,"             \
    " created_at INTEGER NOT NULL);"                                                               \
    "CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks(next_at, wid);"

/* Version 4: operations on a message (a cancel) are durable jobs of their own (ops), and
 * a message may wait for another (DECISIONS "Waiting for another message"): it is
 * not claimed until a message with relation key wait_key reached wait_state (or failed, or
 * wait_until passed); the dispatcher then decides (store.h, ewtp_store_claim_due). */
#define SCHEMA_V4_SQL                                                                              \
    "ALTER TABLE messages ADD COLUMN wait_key TEXT;"                                               \
    "ALTER TABLE messages ADD COLUMN wait_state TEXT;"                                             \
    "ALTER TABLE messages ADD COLUMN wait_until INTEGER NOT NULL DEFAULT 0;"                       \
    "CREATE TABLE IF NOT EXISTS ops(oid INTEGER PRIMARY KEY AUTOINCREMENT,"                        \
    " seq INTEGER NOT NULL REFERENCES messages(seq), op TEXT NOT NULL, reason TEXT,"               \
    " state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,"         \
    " lease_owner TEXT, lease_until INTEGER, created_at INTEGER NOT NULL,"                         \
    " updated_at INTEGER NOT NULL);"                                                               \
    "CREATE INDEX IF NOT EXISTS ops_live ON ops(state, next_at)"                                   \
    " WHERE state IN ('pending', 'delivering');"                                                   \
    "CREATE INDEX IF NOT EXISTS ops_seq ON ops(seq, oid);"

/* v5: the plugins' state blob per ordering key (plugin ABI 1.2 key_state). */
#define SCHEMA_V5_SQL                                                                              \
    "CREATE TABLE IF NOT EXISTS key_states(key TEXT PRIMARY KEY, state BLOB NOT NULL,"             \
    " updated_at INTEGER NOT NULL);"

/* v6 (issue 20): due work has its own small index. `blocked` is 1 while an earlier message of
 * the same ordering key is live (LIVE_STATE): only the head of each key, and the
 * unordered messages, are in messages_ready, so a claim never walks the messages queued behind
 * a head (see Q_CLAIM_SELECT). Three triggers keep the flag, each touching at most two rows
 * found through messages_live_key: a new message is blocked when its key has a live one
 * before it; a message leaving the blocking states unblocks the next live one of its key when
 * it was the head; a message coming back (replay) is blocked behind a live predecessor and
 * blocks the next live one. */
#define KEY_LIVE_BEFORE                                                                            \
    "EXISTS(SELECT 1 FROM messages p WHERE p.ordering_key = new.ordering_key"                      \
    " AND " LIVE_P " AND p.seq < new.seq)"
#define KEY_NEXT_LIVE                                                                              \
    "(SELECT min(n.seq) FROM messages n WHERE n.ordering_key = new.ordering_key"                   \
    " AND " LIVE_N " AND n.seq > new.seq)"
#define SCHEMA_KEY_TRIGGERS_SQL                                                                    \
    "CREATE TRIGGER IF NOT EXISTS messages_key_new AFTER INSERT ON messages"                       \
    " WHEN new.ordering_key IS NOT NULL AND " LIVE_NEW " BEGIN"                                    \
    " UPDATE messages SET blocked = 1 WHERE seq = new.seq AND " KEY_LIVE_BEFORE "; END;"           \
    "CREATE TRIGGER IF NOT EXISTS messages_key_leave AFTER UPDATE OF state ON messages"            \
    " WHEN new.ordering_key IS NOT NULL AND " LIVE_OLD " AND NOT " LIVE_NEW " BEGIN"               \
    " UPDATE messages SET blocked = 0 WHERE seq = " KEY_NEXT_LIVE " AND NOT " KEY_LIVE_BEFORE      \
    "; END;"                                                                                       \
    "CREATE TRIGGER IF NOT EXISTS messages_key_back AFTER UPDATE OF state ON messages"             \
    " WHEN new.ordering_key IS NOT NULL AND NOT " LIVE_OLD " AND " LIVE_NEW " BEGIN"               \
    " UPDATE messages SET blocked = " KEY_LIVE_BEFORE " WHERE seq = new.seq;"                      \
    " UPDATE messages SET blocked = 1 WHERE seq = " KEY_NEXT_LIVE "; END;"
/* Version 7 (issue 18): the evidence of each message (store.h), the bytes sent and answered. */
#define SCHEMA_V7_SQL                                                                              \
    "CREATE TABLE IF NOT EXISTS evidence(eid INTEGER PRIMARY KEY,"                                 \
    " seq INTEGER NOT NULL REFERENCES messages(seq), at INTEGER NOT NULL, kind TEXT NOT NULL,"     \
    " name TEXT NOT NULL, meta TEXT, body BLOB NOT NULL);"                                         \
    "CREATE INDEX IF NOT EXISTS evidence_seq ON evidence(seq, eid);"                               \
    "CREATE INDEX IF NOT EXISTS evidence_at ON evidence(at);"
#define SCHEMA_V6_COLUMN_SQL "ALTER TABLE messages ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;"
#define SCHEMA_V6_SQL                                                                              \
    "UPDATE messages SET blocked = 1 WHERE ordering_key IS NOT NULL AND " LIVE_STATE               \
    " AND EXISTS(SELECT 1 FROM messages p WHERE p.ordering_key = messages.ordering_key"            \
    " AND " LIVE_P " AND p.seq < messages.seq);"                                                   \
    "CREATE INDEX IF NOT EXISTS messages_ready ON messages(next_attempt_at, seq)"                  \
    " WHERE state IN ('accepted', 'retrying') AND blocked = 0;" SCHEMA_KEY_TRIGGERS_SQL
/* Version 8 (issue 20): the live states written out as comparisons (LIVE_STATE) in the
 * partial index messages_live_key and in the triggers, which a version 7 file has as
 * `state IN (four states)`: SQLite evaluates a constant list of more than two as a temporary
 * b-tree built for each statement, two or three of them per accepted message (the insert
 * tests the index' WHERE, the trigger its WHEN and its probe). Same rows, same rule. */
#define SCHEMA_V8_SQL                                                                              \
    "DROP TRIGGER IF EXISTS messages_key_new; DROP TRIGGER IF EXISTS messages_key_leave;"          \
    "DROP TRIGGER IF EXISTS messages_key_back; DROP INDEX IF EXISTS messages_live_key;"            \
    "CREATE INDEX messages_live_key ON messages(ordering_key, seq)"                                \
    " WHERE ordering_key IS NOT NULL AND " LIVE_STATE ";" SCHEMA_KEY_TRIGGERS_SQL

static const char schema_sql[] =
    "CREATE TABLE messages("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT," /* accept order; never reused */
    " tenant TEXT NOT NULL, id TEXT NOT NULL,"
    " kind TEXT NOT NULL, destination TEXT NOT NULL, plugin TEXT NOT NULL,"
    " state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_at INTEGER NOT NULL DEFAULT 0,"
    " authority_ref TEXT, hash TEXT NOT NULL, canonical TEXT NOT NULL, body BLOB,"
    " ordering_key TEXT, batch_key TEXT, needs_chain INTEGER NOT NULL DEFAULT 0,"
    " warnings TEXT, errors TEXT, lease_owner TEXT, lease_until INTEGER,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " UNIQUE(tenant, id));"
    "CREATE INDEX messages_due ON messages(state, next_attempt_at);"
    "CREATE INDEX messages_live_key ON messages(ordering_key, seq)"
    " WHERE ordering_key IS NOT NULL AND " LIVE_STATE ";"
    "CREATE INDEX messages_ref ON messages(plugin, authority_ref)"
    " WHERE authority_ref IS NOT NULL;"
    "CREATE TABLE relations(key TEXT NOT NULL,"
    " seq INTEGER NOT NULL REFERENCES messages(seq),"
    " PRIMARY KEY(key, seq)) WITHOUT ROWID;"
    "CREATE TABLE events(eid INTEGER PRIMARY KEY AUTOINCREMENT,"
    " seq INTEGER NOT NULL REFERENCES messages(seq), at INTEGER NOT NULL, type TEXT NOT NULL,"
    " state TEXT NOT NULL, attempt INTEGER NOT NULL, detail TEXT);"
    "CREATE INDEX events_seq ON events(seq, eid);"
    "CREATE TABLE receipts(rid INTEGER PRIMARY KEY AUTOINCREMENT,"
    " seq INTEGER NOT NULL REFERENCES messages(seq), at INTEGER NOT NULL,"
    " state TEXT NOT NULL, code TEXT, message TEXT, raw BLOB);"
    "CREATE INDEX receipts_seq ON receipts(seq, rid);"
    "CREATE TABLE chains(key TEXT PRIMARY KEY, number INTEGER NOT NULL,"
    " authority_ref TEXT, updated_at INTEGER NOT NULL);" SCHEMA_V2_SQL SCHEMA_V3_SQL SCHEMA_V4_SQL
        SCHEMA_V5_SQL SCHEMA_V6_COLUMN_SQL SCHEMA_V6_SQL SCHEMA_V7_SQL;

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

enum sql {
    Q_BEGIN,
    Q_BEGIN_READ,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVEPOINT,
    Q_RELEASE,
    Q_ROLLBACK_TO,
    Q_FIND,
    Q_INSERT_MSG,
    Q_INSERT_REL,
    Q_INSERT_EVENT,
    Q_INSERT_RECEIPT,
    Q_MSG_BY_SEQ,
    Q_MSG_BY_TID,
    Q_RECEIPTS,
    Q_EVENTS,
    Q_LIST,
    Q_CLAIM_SELECT,
    Q_CLAIM_UPDATE,
    Q_EXPIRED,
    Q_REQUEUE,
    Q_OUTCOME,
    Q_SET_STATE,
    Q_SET_REF,
    Q_SET_ERRORS,
    Q_CHAIN_GET,
    Q_CHAIN_PUT,
    Q_CHAIN_FIRST,
    Q_KSTATE_GET,
    Q_KSTATE_PUT,
    Q_BY_REF,
    Q_REPLAY,
    Q_RETRY_NOW,
    Q_RELATED,
    Q_RELATED_ANY,
    Q_COUNTS,
    Q_BACKLOG,
    Q_POLL_SELECT,
    Q_POLL_SET,
    Q_WH_INSERT,
    Q_WH_SELECT,
    Q_WH_CLAIM,
    Q_WH_GET,
    Q_WH_DELETE,
    Q_WH_RETRY,
    Q_WH_COUNT,
    Q_OP_LIVE,
    Q_OP_INSERT,
    Q_OP_SELECT,
    Q_OP_LEASE,
    Q_OP_GET,
    Q_OP_FINISH,
    Q_OP_EXPIRED,
    Q_OP_REQUEUE,
    Q_OP_COUNT,
    Q_EV_INSERT,
    Q_DOC_REF,
    Q_COUNT,
};

static const char *const sql_text[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_BEGIN_READ] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT one",
    [Q_RELEASE] = "RELEASE one",
    [Q_ROLLBACK_TO] = "ROLLBACK TO one",
    [Q_FIND] = "SELECT seq, hash, state FROM messages WHERE tenant = ?1 AND id = ?2",
    [Q_INSERT_MSG] =
        "INSERT INTO messages(tenant, id, kind, destination, plugin, state, attempts,"
        " next_attempt_at, hash, canonical, body, ordering_key, batch_key, needs_chain, warnings,"
        " created_at, updated_at, wait_key, wait_state, wait_until) VALUES(?1, ?2, ?3, ?4, ?5,"
        " 'accepted', 0, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?6, ?6, ?14, ?15, ?16)",
    [Q_INSERT_REL] = "INSERT OR IGNORE INTO relations(key, seq) VALUES(?1, ?2)",
    [Q_INSERT_EVENT] = "INSERT INTO events(seq, at, type, state, attempt, detail)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_INSERT_RECEIPT] = "INSERT INTO receipts(seq, at, state, code, message, raw)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_MSG_BY_SEQ] = "SELECT " MSG_COLS " FROM messages WHERE seq = ?1",
    [Q_MSG_BY_TID] = "SELECT " MSG_COLS " FROM messages WHERE tenant = ?1 AND id = ?2",
    [Q_RECEIPTS] = "SELECT at, state, code, message FROM receipts WHERE seq = ?1 ORDER BY rid",
    [Q_EVENTS] = "SELECT at, type, state, attempt, detail FROM events WHERE seq = ?1"
                 " ORDER BY eid",
    [Q_LIST] = "SELECT " MSG_COLS " FROM messages WHERE seq > ?1"
               " AND (?2 IS NULL OR tenant = ?2) AND (?3 IS NULL OR state = ?3)"
               " AND (?4 IS NULL OR destination = ?4) ORDER BY seq LIMIT ?5",
    /* The claim (issue 20; store_pg.c ports the same design): its cost depends on the batch,
     * not on the backlog.
     * - Candidates come from messages_ready, a partial index on (next_attempt_at, seq) of the
     *   messages that are due in principle: accepted or retrying, and not queued behind a live
     *   message of their ordering key (`blocked`, kept by the v6 triggers in the same
     *   transaction as every state change). A key with 100,000 messages queued puts one row
     *   there, its head; the rows are read in claim order, so LIMIT stops the walk.
     * - Each candidate still gets the strict per-key probe (no live predecessor), now an
     *   O(log n) look-up in the partial index messages_live_key, so `blocked` can only make
     *   the claim narrower than the rule, never wider.
     * - Waits (ABI 1.1) are checked per candidate as before: messages waiting for another
     *   are walked until theirs arrives (bounded by the waiting ones, not the backlog).
     * - Claiming is batched: one transaction leases up to CLAIM_MAX messages.
     * PostgreSQL: the same column, triggers (or the same UPDATEs in the state-changing
     * statements) and a partial index WHERE state IN ('accepted','retrying') AND NOT blocked,
     * with FOR UPDATE SKIP LOCKED on the candidate rows. */
    [Q_CLAIM_SELECT] =
        "SELECT m.seq FROM messages m INDEXED BY messages_ready"
        " WHERE m.state IN ('accepted', 'retrying') AND m.blocked = 0"
        " AND m.next_attempt_at <= ?1 AND (m.ordering_key IS NULL OR NOT EXISTS("
        "  SELECT 1 FROM messages p WHERE p.ordering_key = m.ordering_key AND p.seq < m.seq"
        "  AND " LIVE_P "))"
        " AND (m.wait_key IS NULL OR m.wait_until <= ?1 OR EXISTS("
        "  SELECT 1 FROM relations r JOIN messages o ON o.seq = r.seq"
        "  WHERE r.key = m.wait_key AND o.seq <> m.seq AND (o.state IN ('rejected', 'cancelled')"
        "  OR o.state = m.wait_state OR (m.wait_state = 'submitted' AND o.state = 'approved'))))"
        " ORDER BY m.next_attempt_at, m.seq LIMIT ?2",
    [Q_CLAIM_UPDATE] = "UPDATE messages SET state = 'delivering', attempts = attempts + 1,"
                       " next_attempt_at = 0, lease_owner = ?2, lease_until = ?3,"
                       " updated_at = ?4 WHERE seq = ?1",
    [Q_EXPIRED] = "SELECT seq, attempts FROM messages WHERE state = 'delivering'"
                  " AND lease_until <= ?1 ORDER BY seq",
    [Q_REQUEUE] = "UPDATE messages SET state = 'retrying', next_attempt_at = ?2,"
                  " lease_owner = NULL, lease_until = NULL, updated_at = ?2 WHERE seq = ?1",
    [Q_OUTCOME] = "UPDATE messages SET state = ?2, authority_ref = coalesce(?3, authority_ref),"
                  " next_attempt_at = ?4, errors = coalesce(?5, errors), lease_owner = NULL,"
                  " lease_until = NULL, updated_at = ?6 WHERE seq = ?1",
    [Q_SET_STATE] = "UPDATE messages SET state = ?2, next_attempt_at = ?3, lease_owner = NULL,"
                    " lease_until = NULL, updated_at = ?4 WHERE seq = ?1",
    [Q_SET_REF] = "UPDATE messages SET authority_ref = coalesce(?2, authority_ref),"
                  " updated_at = ?3 WHERE seq = ?1",
    [Q_SET_ERRORS] = "UPDATE messages SET errors = ?2 WHERE seq = ?1",
    [Q_CHAIN_GET] = "SELECT number, authority_ref FROM chains WHERE key = ?1",
    [Q_CHAIN_PUT] = "INSERT INTO chains(key, number, authority_ref, updated_at)"
                    " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE SET"
                    " number = excluded.number, authority_ref = excluded.authority_ref,"
                    " updated_at = excluded.updated_at",
    /* A plugin's first number applies only to a key without a chain (ewtpctl chain set wins). */
    [Q_CHAIN_FIRST] = "INSERT INTO chains(key, number, authority_ref, updated_at)"
                      " VALUES(?1, ?2, NULL, ?3) ON CONFLICT(key) DO NOTHING",
    [Q_KSTATE_GET] = "SELECT state FROM key_states WHERE key = ?1",
    [Q_KSTATE_PUT] = "INSERT INTO key_states(key, state, updated_at) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(key) DO UPDATE SET state = excluded.state,"
                     " updated_at = excluded.updated_at",
    /* Never across tenants: a reference that messages of two tenants hold finds nothing
     * (issue 19: a receipt must never be given to another tenant's message). */
    [Q_BY_REF] = "SELECT " MSG_COLS " FROM messages WHERE seq = (SELECT seq FROM refs"
                 " WHERE plugin = ?1 AND ref = ?2 ORDER BY seq DESC LIMIT 1)"
                 " AND NOT EXISTS(SELECT 1 FROM refs r JOIN messages o ON o.seq = r.seq"
                 " WHERE r.plugin = ?1 AND r.ref = ?2 AND o.tenant <> messages.tenant)",
    [Q_REPLAY] = "UPDATE messages SET state = 'accepted', attempts = 0, next_attempt_at = ?2,"
                 " errors = NULL, lease_owner = NULL, lease_until = NULL, updated_at = ?2"
                 " WHERE seq = ?1",
    [Q_RETRY_NOW] = "UPDATE messages SET next_attempt_at = ?2, updated_at = ?2 WHERE seq = ?1",
    /* Per key, the newest RELATED_PER_TENANT of each tenant (so that no tenant can push
     * another's messages out of a key by flooding it), the asking tenant's own first, then
     * newest first (issue 19). */
    [Q_RELATED] =
        "SELECT " MSG_COLS " FROM messages WHERE seq IN (SELECT seq FROM (SELECT m.seq,"
        " row_number() OVER (PARTITION BY r.key, m.tenant ORDER BY m.seq DESC) AS rn"
        " FROM relations r JOIN messages m ON m.seq = r.seq"
        " WHERE r.key IN (SELECT value FROM json_each(?1))"
        " AND NOT (m.tenant IS ?2 AND m.id IS ?3)) WHERE rn <= " RELATED_PER_TENANT_SQL ")"
        " ORDER BY (tenant IS ?2) DESC, seq DESC LIMIT 100",
    /* Whether Q_RELATED can find anything for one key: a probe of the relations primary key
     * and one message row, no temporary tables (Q_RELATED's window and json_each open about
     * five, the bulk of an accept's cost when, as usual, nothing is related; issue 20). */
    [Q_RELATED_ANY] = "SELECT 1 FROM relations r JOIN messages m ON m.seq = r.seq WHERE r.key = ?1"
                      " AND NOT (m.tenant IS ?2 AND m.id IS ?3) LIMIT 1",
    [Q_COUNTS] = "SELECT plugin, state, count(*) FROM messages GROUP BY plugin, state"
                 " ORDER BY plugin, state",
    [Q_BACKLOG] = "SELECT count(*), min(created_at) FROM messages"
                  " WHERE state IN ('accepted', 'delivering', 'retrying')",
    /* A submitted message's next_attempt_at is its next poll (0: now, < 0: never). */
    [Q_POLL_SELECT] = "SELECT seq FROM messages WHERE state = 'submitted'"
                      " AND next_attempt_at >= 0 AND next_attempt_at <= ?1"
                      " ORDER BY next_attempt_at, seq LIMIT ?2",
    [Q_POLL_SET] = "UPDATE messages SET next_attempt_at = ?2 WHERE seq = ?1"
                   " AND state = 'submitted'",
    [Q_WH_INSERT] = "INSERT INTO webhooks(seq, state, at, attempts, next_at, created_at)"
                    " VALUES(?1, ?2, ?3, 0, ?4, ?4)",
    [Q_WH_SELECT] = "SELECT w.wid, w.seq, m.tenant, m.id, w.state, w.at, w.attempts,"
                    " w.created_at FROM webhooks w JOIN messages m ON m.seq = w.seq"
                    " WHERE w.next_at <= ?1 ORDER BY w.next_at, w.wid LIMIT ?2",
    [Q_WH_CLAIM] = "UPDATE webhooks SET attempts = attempts + 1, next_at = ?2 WHERE wid = ?1",
    [Q_WH_GET] = "SELECT seq, state, attempts FROM webhooks WHERE wid = ?1",
    [Q_WH_DELETE] = "DELETE FROM webhooks WHERE wid = ?1",
    [Q_WH_RETRY] = "UPDATE webhooks SET next_at = ?2, last_error = ?3 WHERE wid = ?1",
    [Q_WH_COUNT] = "SELECT count(*) FROM webhooks",
    [Q_OP_LIVE] = "SELECT oid FROM ops WHERE seq = ?1 AND op = ?2"
                  " AND state IN ('pending', 'delivering') ORDER BY oid LIMIT 1",
    [Q_OP_INSERT] = "INSERT INTO ops(seq, op, reason, state, next_at, created_at, updated_at)"
                    " VALUES(?1, ?2, ?3, 'pending', ?4, ?4, ?4)",
    /* Due operations whose message the authority has (a reference, submitted or approved),
     * or whose message ended without one (the caller closes those); the others wait. The
     * live operations first, through their partial index (the IN term lets SQLite use it;
     * CROSS JOIN keeps ops the outer loop): left to itself the planner walked every
     * submitted and approved message ever, probing ops for each, at every dispatcher scan
     * (issue 20: 5 % of ewtpd's CPU while a backlog of 10,000 drained, and growing). */
    [Q_OP_SELECT] = "SELECT o.oid FROM ops o INDEXED BY ops_live CROSS JOIN messages m"
                    " ON m.seq = o.seq"
                    " WHERE o.state = 'pending' AND o.state IN ('pending', 'delivering')"
                    " AND o.next_at <= ?1"
                    " AND ((m.state IN ('submitted', 'approved') AND m.authority_ref IS NOT NULL)"
                    " OR m.state IN ('rejected', 'cancelled'))"
                    " ORDER BY o.next_at, o.oid LIMIT ?2",
    [Q_OP_LEASE] = "UPDATE ops SET state = 'delivering', attempts = attempts + 1,"
                   " lease_owner = ?2, lease_until = ?3, updated_at = ?4 WHERE oid = ?1",
    [Q_OP_GET] = "SELECT oid, seq, op, reason, attempts, created_at FROM ops WHERE oid = ?1",
    /* Fenced: only the holder of the attempt's lease records its end. */
    [Q_OP_FINISH] = "UPDATE ops SET state = ?3, next_at = ?4, lease_owner = NULL,"
                    " lease_until = NULL, updated_at = ?5"
                    " WHERE oid = ?1 AND attempts = ?2 AND state = 'delivering'",
    /* Through the live operations' index, not a scan of every operation ever. */
    [Q_OP_EXPIRED] = "SELECT oid FROM ops INDEXED BY ops_live WHERE state = 'delivering'"
                     " AND state IN ('pending', 'delivering') AND lease_until <= ?1 LIMIT ?2",
    [Q_OP_REQUEUE] = "UPDATE ops SET state = 'pending', next_at = ?2, lease_owner = NULL,"
                     " lease_until = NULL, updated_at = ?2 WHERE oid = ?1",
    [Q_OP_COUNT] = "SELECT count(*) FROM ops WHERE state IN ('pending', 'delivering')",
    /* Both once per delivery: prepared once per connection (preparing them each time was
     * 3 % of ewtpd's CPU while a China backlog drained; issue 20). */
    [Q_EV_INSERT] = "INSERT INTO evidence(seq, at, kind, name, meta, body)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_DOC_REF] = "INSERT OR IGNORE INTO refs(plugin, ref, seq)"
                  " SELECT plugin, ?2, seq FROM messages WHERE seq = ?1",
};

/* One connection and its prepared statements (prepared on first use, kept until close). */
/* Durability of the shared connection's commits (see the top of this file): each write commit
 * takes a ticket of g and waits for an fdatasync of the WAL that covers it (groupsync.h). */
struct wal_sync {
    struct ewtp_groupsync g;
    char *wal_path; /* PATH-wal */
    int fd;         /* read-only descriptor of the WAL file, or -1 until first needed */
    dev_t dev;
    ino_t ino;
};

struct conn {
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
    /* The store's write lock (see struct sqlite_store) and whether this connection holds it. */
    pthread_mutex_t *wmu;
    bool writing;
    struct wal_sync *sync; /* the shared connection's; NULL: synchronous=FULL commits */
};

struct sqlite_store {
    char *path;
    struct conn w;      /* writer thread only */
    pthread_mutex_t mu; /* guards m */
    struct conn m;
    struct wal_sync ws; /* m's commits made durable (struct wal_sync) */
    /* One write transaction at a time across both connections, taken by BEGIN IMMEDIATE and
     * released when the transaction ends. Without it the loser of the SQLite write lock
     * waits in busy_timeout's sleeps (1, 2, 5 ... 25 ms), which capped group commit at a few
     * dozen batches a second while the dispatcher was writing; a mutex wakes it at once. */
    pthread_mutex_t wmu;
    /* Readers for what API requests read (related messages, status, events, lists; issue 20):
     * on m they waited for the mutex while a delivery's transaction held it through its
     * fsync, which was a quarter of the samples of the accept workers under load. WAL readers
     * never wait for a writer; each connection serves one thread at a time. */
    struct conn r[READERS];
    pthread_mutex_t rmu[READERS];
    atomic_uint rnext;
    /* The checkpointer (issue 20): SQLite's automatic checkpoint runs inside the COMMIT that
     * crossed the WAL threshold, so every thousand pages one group commit also copied the WAL
     * into the database file and synced it; the accepts of that batch waited 1 to 2.5 s for
     * it on a busy disk. The commits' WAL hook only wakes this thread, which checkpoints
     * (PASSIVE: beside readers and writers, never holding the write lock) on its own
     * connection. */
    struct conn ck;
    pthread_t ck_thread;
    pthread_mutex_t ckmu;
    pthread_cond_t ckcv;
    bool ck_started, ck_due, ck_stop;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return -EWTP_ENOMEM;
    default:
        return -EWTP_EIO;
    }
}

/* The statement, reset and ready to bind; NULL when it cannot be prepared. */
static sqlite3_stmt *q(struct conn *c, enum sql id)
{
    if (!c->q[id]) {
        if (sqlite3_prepare_v3(c->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &c->q[id],
                               NULL) != SQLITE_OK)
            return NULL;
    } else {
        sqlite3_reset(c->q[id]);
        sqlite3_clear_bindings(c->q[id]);
    }
    return c->q[id];
}

/* The statement in *s, reset and ready to bind; 0 or why it could not be prepared. */
static int prep(struct conn *c, enum sql id, sqlite3_stmt **s)
{
    *s = q(c, id);
    return *s ? 0 : map_rc(sqlite3_errcode(c->db));
}

/* Statements left mid-way keep a read snapshot open, which would pin the WAL; every
 * operation ends by resetting whatever it stepped. */
static void reset_all(struct conn *c)
{
    for (int i = 0; i < Q_COUNT; i++)
        if (c->q[i] && sqlite3_stmt_busy(c->q[i]))
            sqlite3_reset(c->q[i]);
}

static int exec_q(struct conn *c, enum sql id)
{
    if (id == Q_BEGIN && c->wmu && !c->writing) {
        pthread_mutex_lock(c->wmu);
        c->writing = true;
    }
    sqlite3_stmt *s = q(c, id);
    int rc = s ? sqlite3_step(s) : sqlite3_errcode(c->db);
    if (s)
        sqlite3_reset(s);
    rc = rc == SQLITE_DONE ? 0 : map_rc(rc ? rc : SQLITE_ERROR);
    /* The write lock goes with the transaction: after a failed BEGIN, and once COMMIT or
     * ROLLBACK left the connection in autocommit (a failed COMMIT may leave it open). */
    bool ended = id == Q_BEGIN
                     ? rc != 0
                     : (id == Q_COMMIT || id == Q_ROLLBACK) && sqlite3_get_autocommit(c->db);
    if (c->writing && ended) {
        c->writing = false;
        pthread_mutex_unlock(c->wmu);
    }
    return rc;
}

static void bind_str(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* Runs a bound write statement to completion and resets it. */
static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : map_rc(rc ? rc : SQLITE_ERROR);
}

/* Runs write statement id with ?1 = a and ?2 = b. */
static int exec_ii(struct conn *c, enum sql id, int64_t a, int64_t b)
{
    sqlite3_stmt *s;
    int rc = prep(c, id, &s);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, a);
        sqlite3_bind_int64(s, 2, b);
        rc = step_done(s);
    }
    return rc;
}

/* Steps a bound select to its first row: 0 on a row, -EWTP_ENOTFOUND when there is none. */
static int step_row(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -EWTP_ENOTFOUND : map_rc(rc);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? strdup((const char *)t) : NULL;
}

static enum ewtp_store_state col_state(sqlite3_stmt *s, int i)
{
    enum ewtp_store_state st = EWTP_STORE_ACCEPTED;
    ewtp_store_state_from_name((const char *)sqlite3_column_text(s, i), &st);
    return st;
}

static const char *sname(enum ewtp_store_state s)
{
    return ewtp_store_state_name(s);
}

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

/* A stored JSON text as a value; a text that does not parse (never written by us) shows up
 * as a string rather than breaking the whole answer. */
static json_t *stored_json(const unsigned char *text)
{
    if (!text)
        return json_null();
    json_t *j = json_loads((const char *)text, 0, NULL);
    return j ? j : json_string((const char *)text);
}

/* Event detail: the caller's object plus our members. Returns a new reference or NULL. */
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
            /* Not UTF-8 (e.g. a GB18030 answer): keep the bytes exactly. */
            char *e = base64(r->raw, r->raw_len);
            if (e)
                json_object_set_new(d, "raw_base64", json_string(e));
            free(e);
        }
    }
}

/* An event row whose detail is already JSON text (NULL: none). */
static int insert_event_text(struct conn *c, int64_t seq, int64_t at, const char *type,
                             enum ewtp_store_state state, int64_t attempt, const char *text)
{
    sqlite3_stmt *s;
    int rc = prep(c, Q_INSERT_EVENT, &s);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, seq);
        sqlite3_bind_int64(s, 2, at);
        sqlite3_bind_text(s, 3, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, sname(state), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, attempt);
        bind_str(s, 6, text);
        rc = step_done(s);
    }
    return rc;
}

static int insert_event(struct conn *c, int64_t seq, int64_t at, const char *type,
                        enum ewtp_store_state state, int64_t attempt, json_t *detail)
{
    char *text = NULL;
    if (detail && json_object_size(detail) > 0) {
        text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
            return -EWTP_ENOMEM;
    }
    int rc = insert_event_text(c, seq, at, type, state, attempt, text);
    free(text);
    return rc;
}

/* Whether s goes into a JSON string as it is (printable ASCII without '"' or '\\'). */
static bool json_plain(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
            return false;
    return true;
}

static int insert_receipt(struct conn *c, int64_t seq, int64_t now,
                          const struct ewtp_store_receipt *r)
{
    sqlite3_stmt *s;
    int rc = prep(c, Q_INSERT_RECEIPT, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int64(s, 2, r->at > 0 ? r->at : now);
    sqlite3_bind_text(s, 3, sname(r->state), -1, SQLITE_STATIC);
    bind_str(s, 4, r->code);
    bind_str(s, 5, r->message);
    if (r->raw)
        sqlite3_bind_blob(s, 6, r->raw, (int)r->raw_len, SQLITE_STATIC);
    return step_done(s);
}

/* Queues the webhook of a state change, in the caller's transaction. */
static int webhook_insert(struct conn *c, int64_t seq, enum ewtp_store_state state, int64_t at,
                          int64_t now)
{
    sqlite3_stmt *s;
    int rc = prep(c, Q_WH_INSERT, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_text(s, 2, sname(state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, at);
    sqlite3_bind_int64(s, 4, now);
    return step_done(s);
}

/* No gap, no duplicate: the advance must be last + 1, checked and written in the caller's
 * transaction together with the outcome it belongs to. */
static int chain_advance(struct conn *c, const struct ewtp_store_chain_advance *ch, int64_t now)
{
    sqlite3_stmt *s;
    int rc = prep(c, Q_CHAIN_GET, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(s, 1, ch->key, -1, SQLITE_STATIC);
    rc = step_row(s);
    if (rc < 0 && rc != -EWTP_ENOTFOUND)
        return rc;
    int64_t last = rc == 0 ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (ch->number != last + 1)
        return -EWTP_ERANGE;
    rc = prep(c, Q_CHAIN_PUT, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(s, 1, ch->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, ch->number);
    bind_str(s, 3, ch->ref);
    sqlite3_bind_int64(s, 4, now);
    return step_done(s);
}

/* The plugin's per-key state and first chain number of an outcome (ABI 1.2), in the
 * caller's transaction. */
static int key_state_put(struct conn *c, const struct ewtp_store_outcome *o)
{
    sqlite3_stmt *s;
    int rc = 0;
    if (o->key_state && (rc = prep(c, Q_KSTATE_PUT, &s)) == 0) {
        sqlite3_bind_text(s, 1, o->okey, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(s, 2, o->key_state, o->key_state_len, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, o->now);
        rc = step_done(s);
    }
    if (rc == 0 && o->chain_first > 0 && (rc = prep(c, Q_CHAIN_FIRST, &s)) == 0) {
        sqlite3_bind_text(s, 1, o->okey, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, o->chain_first - 1);
        sqlite3_bind_int64(s, 3, o->now);
        rc = step_done(s);
    }
    return rc;
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

/* Fills m from a row selected with MSG_COLS. */
static int row_msg(sqlite3_stmt *s, struct ewtp_store_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->key = (uint64_t)sqlite3_column_int64(s, C_SEQ);
    m->tenant = col_dup(s, C_TENANT);
    m->id = col_dup(s, C_ID);
    m->kind = col_dup(s, C_KIND);
    m->destination = col_dup(s, C_DEST);
    m->plugin = col_dup(s, C_PLUGIN);
    m->state = col_state(s, C_STATE);
    m->attempts = (uint32_t)sqlite3_column_int64(s, C_ATTEMPTS);
    m->next_attempt_at = sqlite3_column_int64(s, C_NEXT);
    m->authority_ref = col_dup(s, C_REF);
    const void *canon = sqlite3_column_text(s, C_CANON);
    m->canonical_len = (size_t)sqlite3_column_bytes(s, C_CANON);
    m->canonical = malloc(m->canonical_len + 1);
    if (m->canonical) {
        if (m->canonical_len)
            memcpy(m->canonical, canon, m->canonical_len);
        m->canonical[m->canonical_len] = '\0';
    }
    m->hash = col_dup(s, C_HASH);
    m->ordering_key = col_dup(s, C_OKEY);
    m->batch_key = col_dup(s, C_BKEY);
    m->needs_chain = sqlite3_column_int(s, C_CHAIN) != 0;
    m->lease_owner = col_dup(s, C_LOWNER);
    m->lease_until = sqlite3_column_int64(s, C_LUNTIL);
    m->created_at = sqlite3_column_int64(s, C_CREATED);
    m->updated_at = sqlite3_column_int64(s, C_UPDATED);
    m->wait_key = col_dup(s, C_WKEY);
    m->wait_state = col_state(s, C_WSTATE);
    m->wait_until = sqlite3_column_int64(s, C_WUNTIL);
    bool ok = m->tenant && m->id && m->kind && m->destination && m->plugin && m->canonical &&
              m->hash && (m->authority_ref || sqlite3_column_type(s, C_REF) == SQLITE_NULL) &&
              (m->ordering_key || sqlite3_column_type(s, C_OKEY) == SQLITE_NULL) &&
              (m->batch_key || sqlite3_column_type(s, C_BKEY) == SQLITE_NULL) &&
              (m->lease_owner || sqlite3_column_type(s, C_LOWNER) == SQLITE_NULL) &&
              (m->wait_key || sqlite3_column_type(s, C_WKEY) == SQLITE_NULL);
    return ok ? 0 : -EWTP_ENOMEM;
}

/* Runs a bound MSG_COLS select and collects up to max rows into a malloc'd array. */
static int collect_msgs(sqlite3_stmt *s, size_t max, struct ewtp_store_msg **out, size_t *n)
{
    struct ewtp_store_msg *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while (cnt < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct ewtp_store_msg *nv = realloc(v, ncap * sizeof(*v));
            if (!nv) {
                ewtp_store_msgs_free(v, cnt);
                return -EWTP_ENOMEM;
            }
            v = nv;
            cap = ncap;
        }
        int r = row_msg(s, &v[cnt]);
        cnt++;
        if (r < 0) {
            ewtp_store_msgs_free(v, cnt);
            return r;
        }
    }
    if (cnt < max && rc != SQLITE_DONE) {
        ewtp_store_msgs_free(v, cnt);
        return map_rc(rc);
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* ---- locking and transactions on the shared connection ---------------------------------- */

static struct conn *lock(struct sqlite_store *ss)
{
    pthread_mutex_lock(&ss->mu);
    return &ss->m;
}

static void unlock(struct sqlite_store *ss)
{
    reset_all(&ss->m);
    pthread_mutex_unlock(&ss->mu);
}

/* A free reader connection (the next one round the ring that is not busy, else the ring's
 * next one once it is free); give it back with read_unlock. */
static struct conn *read_lock(struct sqlite_store *ss)
{
    unsigned start = atomic_fetch_add(&ss->rnext, 1);
    for (unsigned k = 0; k < READERS; k++) {
        unsigned i = (start + k) % READERS;
        if (pthread_mutex_trylock(&ss->rmu[i]) == 0)
            return &ss->r[i];
    }
    unsigned i = start % READERS;
    pthread_mutex_lock(&ss->rmu[i]);
    return &ss->r[i];
}

static void read_unlock(struct sqlite_store *ss, struct conn *c)
{
    reset_all(c);
    pthread_mutex_unlock(&ss->rmu[c - ss->r]);
}

static atomic_uint_fast64_t wal_syncs; /* ewtp_store_sqlite_wal_syncs */

uint64_t ewtp_store_sqlite_wal_syncs(void)
{
    return atomic_load(&wal_syncs);
}

/* The ticket of this thread's last write commit on a NORMAL connection not yet made durable
 * (0: none); taken by finish(), redeemed by unlock_durable() once the mutex is released. */
static _Thread_local uint64_t sync_ticket;
/* ewtp_store_durable_defer: while set, unlock_durable keeps the first and the newest ticket
 * instead of waiting; sq_durable_end waits for the range. */
static _Thread_local bool sync_deferred;
static _Thread_local uint64_t deferred_first, deferred_last;

/* fdatasync of the WAL file through a descriptor of our own (the inode is what is synced),
 * opened again if the file was replaced. The group's sync: one thread at a time. */
static int wal_fdatasync(void *arg)
{
    struct wal_sync *ws = arg;
    struct stat st;
    if (ws->fd >= 0 &&
        (stat(ws->wal_path, &st) != 0 || st.st_dev != ws->dev || st.st_ino != ws->ino)) {
        close(ws->fd);
        ws->fd = -1;
    }
    if (ws->fd < 0) {
        ws->fd = open(ws->wal_path, O_RDONLY | O_CLOEXEC);
        if (ws->fd < 0 || fstat(ws->fd, &st) != 0)
            return -EWTP_EIO;
        ws->dev = st.st_dev;
        ws->ino = st.st_ino;
    }
    if (fdatasync(ws->fd) != 0)
        return -EWTP_EIO;
    atomic_fetch_add(&wal_syncs, 1);
    return 0;
}

/* unlock(), then, when this thread's transaction committed on the NORMAL connection, the wait
 * for its fdatasync (outside the connection's mutex, so that other transactions commit in the
 * meantime and share it). rc is the operation's result; a failed sync replaces a success. */
static int unlock_durable(struct sqlite_store *ss, int rc)
{
    unlock(ss);
    uint64_t t = sync_ticket;
    sync_ticket = 0;
    if (t == 0)
        return rc;
    if (sync_deferred) {
        if (deferred_first == 0)
            deferred_first = t;
        deferred_last = t;
        return rc;
    }
    int r = ewtp_groupsync_wait(&ss->ws.g, t);
    return rc == 0 ? r : rc;
}

static void sq_durable_defer(void *impl)
{
    (void)impl;
    sync_deferred = true;
    deferred_first = deferred_last = 0;
}

static int sq_durable_end(void *impl)
{
    struct sqlite_store *ss = impl;
    uint64_t first = deferred_first, last = deferred_last;
    sync_deferred = false;
    deferred_first = deferred_last = 0;
    return last ? ewtp_groupsync_wait_range(&ss->ws.g, first, last) : 0;
}

/* Ends a transaction: commits when rc == 0 (a failed commit becomes the result), otherwise
 * rolls back. Returns the final rc. A write commit on the NORMAL connection leaves its ticket
 * for unlock_durable(). */
static int finish(struct conn *c, int rc)
{
    reset_all(c);
    if (rc == 0) {
        bool wrote = c->writing;
        rc = exec_q(c, Q_COMMIT);
        if (rc == 0) {
            if (wrote && c->sync)
                sync_ticket = ewtp_groupsync_ticket(&c->sync->g);
            return 0;
        }
    }
    if (!sqlite3_get_autocommit(c->db))
        exec_q(c, Q_ROLLBACK);
    return rc;
}

/* seq (when asked), state and attempts (when asked) of the message a bound MSG_COLS select
 * finds. */
static int find_row(sqlite3_stmt *s, int64_t *seq, enum ewtp_store_state *state, int64_t *attempts)
{
    int rc = step_row(s);
    if (rc < 0)
        return rc;
    if (seq)
        *seq = sqlite3_column_int64(s, C_SEQ);
    *state = col_state(s, C_STATE);
    if (attempts)
        *attempts = sqlite3_column_int64(s, C_ATTEMPTS);
    sqlite3_reset(s);
    return 0;
}

/* seq and state of tenant/id, in the current transaction. */
static int find_tid(struct conn *c, const char *tenant, const char *id, int64_t *seq,
                    enum ewtp_store_state *state, int64_t *attempts)
{
    sqlite3_stmt *s;
    int rc = prep(c, Q_MSG_BY_TID, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(s, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    return find_row(s, seq, state, attempts);
}

static int find_seq(struct conn *c, int64_t seq, enum ewtp_store_state *state, int64_t *attempts)
{
    sqlite3_stmt *s;
    int rc = prep(c, Q_MSG_BY_SEQ, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, seq);
    return find_row(s, NULL, state, attempts);
}

/* ---- group commit (writer connection) ---------------------------------------------------- */

static int sq_batch_begin(void *impl)
{
    struct sqlite_store *ss = impl;
    return exec_q(&ss->w, Q_BEGIN);
}

static int accept_one(struct conn *c, const struct ewtp_store_accept_req *r,
                      enum ewtp_store_accept_result *result, enum ewtp_store_state *state)
{
    sqlite3_stmt *s;
    int rc = prep(c, Q_FIND, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(s, 1, r->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->id, -1, SQLITE_STATIC);
    rc = step_row(s);
    if (rc == 0) {
        const char *h = (const char *)sqlite3_column_text(s, 1);
        *result = h && strcmp(h, r->hash) == 0 ? EWTP_STORE_REPEAT : EWTP_STORE_CONFLICT;
        *state = col_state(s, 2);
        sqlite3_reset(s);
        return 0;
    }
    if (rc != -EWTP_ENOTFOUND)
        return rc;
    sqlite3_reset(s);

    rc = prep(c, Q_INSERT_MSG, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(s, 1, r->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, r->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, r->destination, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, r->plugin, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, r->now);
    sqlite3_bind_text(s, 7, r->hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, r->canonical, (int)r->canonical_len, SQLITE_STATIC);
    if (r->body)
        sqlite3_bind_blob(s, 9, r->body, (int)r->body_len, SQLITE_STATIC);
    bind_str(s, 10, r->ordering_key);
    bind_str(s, 11, r->batch_key);
    sqlite3_bind_int(s, 12, r->needs_chain ? 1 : 0);
    bind_str(s, 13, r->warnings);
    bind_str(s, 14, r->wait_key);
    bind_str(s, 15, r->wait_key ? ewtp_store_state_name(r->wait_state) : NULL);
    sqlite3_bind_int64(s, 16, r->wait_key ? r->wait_until : 0);
    rc = step_done(s);
    if (rc < 0)
        return rc;
    int64_t seq = sqlite3_last_insert_rowid(c->db);

    for (size_t i = 0; i < r->n_relations; i++) {
        rc = prep(c, Q_INSERT_REL, &s);
        if (rc == 0) {
            sqlite3_bind_text(s, 1, r->relations[i], -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, seq);
            rc = step_done(s);
        }
        if (rc < 0)
            return rc;
    }
    /* {"hash":"<hex>"} written directly for the usual hex digest (issue 20: jansson's pack
     * and dump were a fifth of the event's cost); anything else through jansson. */
    char detail[128];
    if (strlen(r->hash) < sizeof(detail) - 12 && json_plain(r->hash)) {
        snprintf(detail, sizeof(detail), "{\"hash\":\"%s\"}", r->hash);
        rc = insert_event_text(c, seq, r->now, "accepted", EWTP_STORE_ACCEPTED, 0, detail);
    } else {
        json_t *d = json_pack("{s:s}", "hash", r->hash);
        rc = insert_event(c, seq, r->now, "accepted", EWTP_STORE_ACCEPTED, 0, d);
        json_decref(d);
    }
    if (rc < 0)
        return rc;
    *result = EWTP_STORE_NEW;
    *state = EWTP_STORE_ACCEPTED;
    return 0;
}

static int sq_batch_accept(void *impl, const struct ewtp_store_accept_req *r,
                           enum ewtp_store_accept_result *result, enum ewtp_store_state *state)
{
    struct sqlite_store *ss = impl;
    struct conn *c = &ss->w;
    /* A savepoint per accept: one bad accept must not take its batch-mates down with it. */
    int rc = exec_q(c, Q_SAVEPOINT);
    if (rc < 0)
        return rc;
    rc = accept_one(c, r, result, state);
    reset_all(c);
    if (rc < 0)
        exec_q(c, Q_ROLLBACK_TO);
    int rc2 = exec_q(c, Q_RELEASE);
    return rc < 0 ? rc : rc2;
}

static int sq_batch_commit(void *impl)
{
    struct sqlite_store *ss = impl;
    reset_all(&ss->w);
    return exec_q(&ss->w, Q_COMMIT);
}

static void sq_batch_rollback(void *impl)
{
    struct sqlite_store *ss = impl;
    reset_all(&ss->w);
    if (!sqlite3_get_autocommit(ss->w.db))
        exec_q(&ss->w, Q_ROLLBACK);
}

/* ---- reads -------------------------------------------------------------------------------- */

/* get and find_by_authority_ref: the one message select id finds by ?1 = a and ?2 = b. */
static int get_one(struct sqlite_store *ss, enum sql id, const char *a, const char *b,
                   struct ewtp_store_msg **out)
{
    struct conn *c = read_lock(ss);
    sqlite3_stmt *s;
    int rc = prep(c, id, &s);
    if (rc == 0) {
        sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
        size_t n = 0;
        rc = collect_msgs(s, 1, out, &n);
        if (rc == 0 && n == 0)
            rc = -EWTP_ENOTFOUND;
    }
    read_unlock(ss, c);
    return rc;
}

static int sq_get(void *impl, const char *tenant, const char *id, struct ewtp_store_msg **out)
{
    return get_one(impl, Q_MSG_BY_TID, tenant, id, out);
}

/* The status row of the message row s is on (selected with MSG_COLS), with its receipts. */
static int status_row(struct conn *c, sqlite3_stmt *s, struct ewtp_store_status *o)
{
    memset(o, 0, sizeof(*o));
    o->tenant = col_dup(s, C_TENANT);
    o->id = col_dup(s, C_ID);
    o->kind = col_dup(s, C_KIND);
    o->destination = col_dup(s, C_DEST);
    o->plugin = col_dup(s, C_PLUGIN);
    o->state = col_state(s, C_STATE);
    o->attempts = sqlite3_column_int64(s, C_ATTEMPTS);
    o->next_attempt_at = sqlite3_column_int64(s, C_NEXT);
    o->authority_ref = col_dup(s, C_REF);
    o->warnings = col_dup(s, C_WARN);
    o->errors = col_dup(s, C_ERRORS);
    o->created_at = sqlite3_column_int64(s, C_CREATED);
    o->updated_at = sqlite3_column_int64(s, C_UPDATED);
    if (!o->tenant || !o->id || !o->kind || !o->destination || !o->plugin ||
        (!o->authority_ref && sqlite3_column_type(s, C_REF) != SQLITE_NULL) ||
        (!o->warnings && sqlite3_column_type(s, C_WARN) != SQLITE_NULL) ||
        (!o->errors && sqlite3_column_type(s, C_ERRORS) != SQLITE_NULL))
        return -EWTP_ENOMEM;

    sqlite3_stmt *r;
    int rc = prep(c, Q_RECEIPTS, &r);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(r, 1, sqlite3_column_int64(s, C_SEQ));
    size_t cap = 0;
    int x;
    while ((x = sqlite3_step(r)) == SQLITE_ROW) {
        if (o->n_receipts == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct ewtp_store_receipt_row *nv = realloc(o->receipts, ncap * sizeof(*nv));
            if (!nv) {
                sqlite3_reset(r);
                return -EWTP_ENOMEM;
            }
            o->receipts = nv;
            cap = ncap;
        }
        struct ewtp_store_receipt_row *e = &o->receipts[o->n_receipts++];
        e->at = sqlite3_column_int64(r, 0);
        e->state = col_dup(r, 1);
        e->code = col_dup(r, 2);
        e->message = col_dup(r, 3);
        if ((!e->state && sqlite3_column_type(r, 1) != SQLITE_NULL) ||
            (!e->code && sqlite3_column_type(r, 2) != SQLITE_NULL) ||
            (!e->message && sqlite3_column_type(r, 3) != SQLITE_NULL)) {
            sqlite3_reset(r);
            return -EWTP_ENOMEM;
        }
    }
    sqlite3_reset(r);
    return x == SQLITE_DONE ? 0 : map_rc(x);
}

static int sq_status_get(void *impl, const char *tenant, const char *id,
                         struct ewtp_store_status **out)
{
    struct sqlite_store *ss = impl;
    struct ewtp_store_status *o = calloc(1, sizeof(*o));
    if (!o)
        return -EWTP_ENOMEM;
    struct conn *c = read_lock(ss);
    /* One read transaction: the message and its receipts from the same snapshot. */
    int rc = exec_q(c, Q_BEGIN_READ);
    if (rc == 0) {
        sqlite3_stmt *s;
        rc = prep(c, Q_MSG_BY_TID, &s);
        if (rc == 0) {
            sqlite3_bind_text(s, 1, tenant, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
            rc = step_row(s);
            if (rc == 0)
                rc = status_row(c, s, o);
        }
        finish(c, 0);
    }
    read_unlock(ss, c);
    if (rc < 0) {
        ewtp_store_status_free(o, 1);
        return rc;
    }
    *out = o;
    return 0;
}

static int sq_events(void *impl, const char *tenant, const char *id, struct ewtp_store_event **out,
                     size_t *n)
{
    struct sqlite_store *ss = impl;
    struct conn *c = read_lock(ss);
    int64_t seq = 0;
    enum ewtp_store_state st;
    struct ewtp_store_event *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = exec_q(c, Q_BEGIN_READ);
    if (rc == 0) {
        rc = find_tid(c, tenant, id, &seq, &st, NULL);
        sqlite3_stmt *s = NULL;
        if (rc == 0)
            rc = prep(c, Q_EVENTS, &s);
        if (rc == 0) {
            sqlite3_bind_int64(s, 1, seq);
            int x;
            while (rc == 0 && (x = sqlite3_step(s)) == SQLITE_ROW) {
                if (cnt == cap) {
                    size_t ncap = cap ? cap * 2 : 16;
                    struct ewtp_store_event *nv = realloc(v, ncap * sizeof(*nv));
                    if (!nv) {
                        rc = -EWTP_ENOMEM;
                        break;
                    }
                    v = nv;
                    cap = ncap;
                }
                struct ewtp_store_event *e = &v[cnt++];
                e->at = sqlite3_column_int64(s, 0);
                e->type = col_dup(s, 1);
                e->state = col_dup(s, 2);
                e->attempt = sqlite3_column_int64(s, 3);
                e->detail = col_dup(s, 4);
                if (!e->type || !e->state ||
                    (!e->detail && sqlite3_column_type(s, 4) != SQLITE_NULL))
                    rc = -EWTP_ENOMEM;
            }
            if (rc == 0 && x != SQLITE_DONE)
                rc = map_rc(x);
        }
        finish(c, 0);
    }
    read_unlock(ss, c);
    if (rc < 0) {
        ewtp_store_events_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* The cursor is the seq of the last item shown, in decimal: opaque to clients, and stable
 * under inserts because seq only grows. */
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

static int sq_list(void *impl, const struct ewtp_store_filter *f, struct ewtp_store_page *out)
{
    int64_t after;
    if (parse_cursor(f->after, &after) < 0)
        return -EWTP_EINVAL;
    size_t limit = f->limit ? f->limit : LIST_DEFAULT;
    if (limit > LIST_MAX)
        limit = LIST_MAX;
    struct sqlite_store *ss = impl;
    struct ewtp_store_status *items = calloc(limit, sizeof(*items));
    if (!items)
        return -EWTP_ENOMEM;
    size_t cnt = 0;
    struct conn *c = read_lock(ss);
    int64_t last = 0;
    bool more = false;
    int rc = exec_q(c, Q_BEGIN_READ);
    if (rc == 0) {
        sqlite3_stmt *s;
        rc = prep(c, Q_LIST, &s);
        if (rc == 0) {
            sqlite3_bind_int64(s, 1, after);
            bind_str(s, 2, f->tenant);
            bind_str(s, 3, f->state);
            bind_str(s, 4, f->destination);
            /* One more than asked: tells whether a next page exists. */
            sqlite3_bind_int64(s, 5, (int64_t)limit + 1);
            int x;
            while (rc == 0 && (x = sqlite3_step(s)) == SQLITE_ROW) {
                if (cnt == limit) {
                    more = true;
                    break;
                }
                last = sqlite3_column_int64(s, C_SEQ);
                rc = status_row(c, s, &items[cnt++]);
            }
            if (rc == 0 && !more && x != SQLITE_DONE)
                rc = map_rc(x);
        }
        finish(c, 0);
    }
    read_unlock(ss, c);
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

/* SQLite VM steps of every claim select, and of every operation claim's, so far
 * (store_sqlite.h): their work, counted by test_claim_cost without a clock. */
static _Atomic uint64_t claim_vm_steps, op_claim_vm_steps;

uint64_t ewtp_store_sqlite_claim_steps(void)
{
    return atomic_load(&claim_vm_steps);
}

uint64_t ewtp_store_sqlite_op_claim_steps(void)
{
    return atomic_load(&op_claim_vm_steps);
}

/* The seqs (column 0) that select id finds with ?1 = now and ?2 = limit, up to limit. */
static int select_seqs(struct conn *c, enum sql id, int64_t now, size_t limit, int64_t *seqs,
                       size_t *n)
{
    sqlite3_stmt *s;
    int rc = prep(c, id, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, (int64_t)limit);
    size_t cnt = 0;
    int x = SQLITE_DONE;
    while (cnt < limit && (x = sqlite3_step(s)) == SQLITE_ROW)
        seqs[cnt++] = sqlite3_column_int64(s, 0);
    if (cnt < limit && x != SQLITE_DONE)
        rc = map_rc(x);
    if (id == Q_CLAIM_SELECT || id == Q_OP_SELECT)
        atomic_fetch_add(id == Q_CLAIM_SELECT ? &claim_vm_steps : &op_claim_vm_steps,
                         (uint64_t)sqlite3_stmt_status(s, SQLITE_STMTSTATUS_VM_STEP, 1));
    sqlite3_reset(s);
    *n = cnt;
    return rc;
}

/* Reads message seq back into m, in the current transaction. */
static int load_msg(struct conn *c, int64_t seq, struct ewtp_store_msg *m)
{
    sqlite3_stmt *s;
    int rc = prep(c, Q_MSG_BY_SEQ, &s);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, seq);
        rc = sqlite3_step(s) == SQLITE_ROW ? row_msg(s, m) : -EWTP_EIO;
        sqlite3_reset(s);
    }
    return rc;
}

/* Leases message seq to owner until `until`: delivering, one more attempt. */
static int lease(struct conn *c, int64_t seq, const char *owner, int64_t until, int64_t now)
{
    sqlite3_stmt *s;
    int rc = prep(c, Q_CLAIM_UPDATE, &s);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, seq);
        sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, until);
        sqlite3_bind_int64(s, 4, now);
        rc = step_done(s);
    }
    return rc;
}

/* claim_due (deliver) and claim_poll: in one transaction, select the due messages, mark each
 * (deliver: leased to owner until `until`, with a "claimed" event; poll: next poll at
 * `until`) and read it back. */
static int claim_msgs(struct sqlite_store *ss, bool deliver, const char *owner, int64_t now,
                      size_t limit, int64_t until, struct ewtp_store_msg **out, size_t *n)
{
    struct conn *c = lock(ss);
    int64_t *seqs = calloc(limit, sizeof(*seqs));
    size_t cnt = 0, done = 0;
    struct ewtp_store_msg *msgs = NULL;
    int rc = seqs ? exec_q(c, Q_BEGIN) : -EWTP_ENOMEM;
    if (rc == 0) {
        rc = select_seqs(c, deliver ? Q_CLAIM_SELECT : Q_POLL_SELECT, now, limit, seqs, &cnt);
        if (rc == 0 && cnt && !(msgs = calloc(cnt, sizeof(*msgs))))
            rc = -EWTP_ENOMEM;
        json_t *d = deliver ? json_pack("{s:s}", "owner", owner) : NULL;
        if (deliver && !d)
            rc = -EWTP_ENOMEM;
        for (size_t i = 0; rc == 0 && i < cnt; i++) {
            rc = deliver ? lease(c, seqs[i], owner, until, now)
                         : exec_ii(c, Q_POLL_SET, seqs[i], until);
            if (rc < 0)
                break;
            rc = load_msg(c, seqs[i], &msgs[i]);
            done = i + 1;
            if (rc == 0 && deliver)
                rc = insert_event(c, seqs[i], now, "claimed", EWTP_STORE_DELIVERING,
                                  (int64_t)msgs[i].attempts, d);
        }
        json_decref(d);
        rc = finish(c, rc);
        if (rc < 0) {
            ewtp_store_msgs_free(msgs, done);
            msgs = NULL;
            cnt = 0;
        }
    }
    rc = unlock_durable(ss, rc);
    free(seqs);
    if (rc < 0)
        return rc;
    *out = msgs;
    *n = cnt;
    return 0;
}

static int sq_claim_due(void *impl, int64_t now, size_t limit, int64_t lease_ms, const char *owner,
                        struct ewtp_store_msg **out, size_t *n)
{
    return claim_msgs(impl, true, owner, now, limit, now + lease_ms, out, n);
}

static int requeue_expired_ops(struct conn *c, int64_t now);

static int sq_requeue_expired(void *impl, int64_t now, size_t *n)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    size_t cnt = 0;
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        /* Collect first: updating rows while stepping the same query is not defined. */
        int64_t *seqs = NULL, *atts = NULL;
        size_t cap = 0;
        sqlite3_stmt *s;
        rc = prep(c, Q_EXPIRED, &s);
        if (rc == 0) {
            sqlite3_bind_int64(s, 1, now);
            int x;
            while ((x = sqlite3_step(s)) == SQLITE_ROW) {
                if (cnt == cap) {
                    cap = cap ? cap * 2 : 16;
                    int64_t *a = realloc(seqs, cap * sizeof(*a));
                    if (a)
                        seqs = a;
                    int64_t *b = realloc(atts, cap * sizeof(*b));
                    if (b)
                        atts = b;
                    if (!a || !b) {
                        rc = -EWTP_ENOMEM;
                        break;
                    }
                }
                seqs[cnt] = sqlite3_column_int64(s, 0);
                atts[cnt] = sqlite3_column_int64(s, 1);
                cnt++;
            }
            if (rc == 0 && x != SQLITE_DONE)
                rc = map_rc(x);
            sqlite3_reset(s);
        }
        for (size_t i = 0; rc == 0 && i < cnt; i++) {
            rc = exec_ii(c, Q_REQUEUE, seqs[i], now);
            if (rc == 0)
                rc = insert_event(c, seqs[i], now, "lease_expired", EWTP_STORE_RETRYING, atts[i],
                                  NULL);
        }
        free(seqs);
        free(atts);
        if (rc == 0)
            rc = requeue_expired_ops(c, now);
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    *n = rc == 0 ? cnt : 0;
    return rc;
}

/* n evidence rows of message seq in c's open transaction (at <= 0: now). */
static int insert_evidence(struct conn *c, int64_t seq, const struct ewtp_store_evidence *e,
                           size_t n, int64_t now)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(c, Q_EV_INSERT, &s);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_bind_int64(s, 1, seq);
        sqlite3_bind_int64(s, 2, e[i].at > 0 ? e[i].at : now);
        bind_str(s, 3, e[i].kind);
        bind_str(s, 4, e[i].name);
        bind_str(s, 5, e[i].meta);
        sqlite3_bind_blob64(s, 6, e[i].body ? e[i].body : "", e[i].body_len, SQLITE_STATIC);
        rc = step_done(s);
    }
    return rc;
}

/* The document's own id as one more reference of message seq under its plugin (store.h
 * ewtp_store_outcome.doc_ref), in c's transaction. */
static int add_doc_ref(struct conn *c, int64_t seq, const char *ref)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(c, Q_DOC_REF, &s);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, seq);
        sqlite3_bind_text(s, 2, ref, -1, SQLITE_STATIC);
        rc = step_done(s);
    }
    return rc;
}

static int sq_record_outcome(void *impl, const struct ewtp_store_outcome *o)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    json_t *d = NULL;
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        enum ewtp_store_state cur;
        int64_t attempts = 0;
        rc = find_seq(c, (int64_t)o->key, &cur, &attempts);
        /* The attempt fences a lost lease: after a requeue or a new claim this caller no
         * longer owns the message and its late answer must not overwrite the new one. */
        if (rc == 0 && (cur != EWTP_STORE_DELIVERING || attempts != (int64_t)o->attempt))
            rc = -EWTP_EINVAL;
        if (rc == 0 && o->chain)
            rc = chain_advance(c, o->chain, o->now);
        if (rc == 0 && (o->key_state || o->chain_first > 0))
            rc = key_state_put(c, o);
        sqlite3_stmt *s = NULL;
        if (rc == 0 && (rc = prep(c, Q_OUTCOME, &s)) == 0) {
            sqlite3_bind_int64(s, 1, (int64_t)o->key);
            sqlite3_bind_text(s, 2, sname(o->state), -1, SQLITE_STATIC);
            bind_str(s, 3, o->authority_ref);
            sqlite3_bind_int64(s, 4,
                               o->state == EWTP_STORE_RETRYING    ? o->next_attempt_at
                               : o->state == EWTP_STORE_SUBMITTED ? o->poll_at
                                                                  : 0);
            bind_str(s, 5, o->errors);
            sqlite3_bind_int64(s, 6, o->now);
            rc = step_done(s);
        }
        if (rc == 0 && o->doc_ref)
            rc = add_doc_ref(c, (int64_t)o->key, o->doc_ref);
        if (rc == 0 && o->receipt)
            rc = insert_receipt(c, (int64_t)o->key, o->now, o->receipt);
        if (rc == 0) {
            d = detail_new(o->detail);
            if (o->authority_ref)
                json_object_set_new(d, "authority_ref", json_string(o->authority_ref));
            if (o->state == EWTP_STORE_RETRYING)
                json_object_set_new(d, "next_attempt_at", time_json(o->next_attempt_at));
            if (o->errors)
                json_object_set_new(d, "errors", stored_json((const unsigned char *)o->errors));
            detail_receipt(d, o->receipt);
            detail_chain(d, o->chain);
            rc = insert_event(c, (int64_t)o->key, o->now, "outcome", o->state, o->attempt, d);
        }
        if (rc == 0 && o->webhook)
            rc = webhook_insert(c, (int64_t)o->key, o->state, o->now, o->now);
        if (rc == 0 && o->n_evidence)
            rc = insert_evidence(c, (int64_t)o->key, o->evidence, o->n_evidence, o->now);
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    json_decref(d);
    return rc;
}

static int sq_record_receipt(void *impl, const struct ewtp_store_receipt_rec *r)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    json_t *d = NULL;
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        enum ewtp_store_state cur;
        int64_t attempts = 0;
        rc = find_seq(c, (int64_t)r->key, &cur, &attempts);
        bool uncancel =
            r->cancel_confirmed && r->state == EWTP_STORE_CANCELLED && cur == EWTP_STORE_APPROVED;
        bool change = rc == 0 && r->set_state && (!ewtp_store_state_terminal(cur) || uncancel);
        enum ewtp_store_state after = change ? r->state : cur;
        if (rc == 0 && r->chain)
            rc = chain_advance(c, r->chain, r->now);
        sqlite3_stmt *s = NULL;
        if (rc == 0 && change && (rc = prep(c, Q_SET_STATE, &s)) == 0) {
            bool due = after == EWTP_STORE_ACCEPTED || after == EWTP_STORE_RETRYING;
            sqlite3_bind_int64(s, 1, (int64_t)r->key);
            sqlite3_bind_text(s, 2, sname(after), -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 3, due ? r->now : 0);
            sqlite3_bind_int64(s, 4, r->now);
            rc = step_done(s);
        }
        if (rc == 0 && change && r->errors && (rc = prep(c, Q_SET_ERRORS, &s)) == 0) {
            sqlite3_bind_int64(s, 1, (int64_t)r->key);
            sqlite3_bind_text(s, 2, r->errors, -1, SQLITE_STATIC);
            rc = step_done(s);
        }
        if (rc == 0 && (rc = prep(c, Q_SET_REF, &s)) == 0) {
            sqlite3_bind_int64(s, 1, (int64_t)r->key);
            bind_str(s, 2, r->authority_ref);
            sqlite3_bind_int64(s, 3, r->now);
            rc = step_done(s);
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
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    json_decref(d);
    return rc;
}

static int sq_find_by_authority_ref(void *impl, const char *plugin, const char *ref,
                                    struct ewtp_store_msg **out)
{
    return get_one(impl, Q_BY_REF, plugin, ref, out);
}

static int sq_add_event(void *impl, uint64_t key, const char *type, uint32_t attempt,
                        const char *detail, int64_t now)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        enum ewtp_store_state cur;
        rc = find_seq(c, (int64_t)key, &cur, NULL);
        if (rc == 0) {
            json_t *d = detail_new(detail);
            rc = insert_event(c, (int64_t)key, now, type, cur, attempt, d);
            json_decref(d);
        }
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

/* replay and retry_now: a state precondition, one update, one event. */
static int admin_op(struct sqlite_store *ss, const char *tenant, const char *id, int64_t now,
                    enum ewtp_store_state need, enum sql update, const char *type,
                    enum ewtp_store_state after)
{
    struct conn *c = lock(ss);
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        int64_t seq = 0, attempts = 0;
        enum ewtp_store_state cur;
        rc = find_tid(c, tenant, id, &seq, &cur, &attempts);
        if (rc == 0 && cur != need)
            rc = -EWTP_EINVAL;
        if (rc == 0)
            rc = exec_ii(c, update, seq, now);
        if (rc == 0) {
            json_t *d = json_pack("{s:I}", "previous_attempts", (json_int_t)attempts);
            rc = insert_event(c, seq, now, type, after, update == Q_REPLAY ? 0 : attempts, d);
            json_decref(d);
        }
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

static int sq_replay(void *impl, const char *tenant, const char *id, int64_t now)
{
    return admin_op(impl, tenant, id, now, EWTP_STORE_DEAD, Q_REPLAY, "replay",
                    EWTP_STORE_ACCEPTED);
}

static int sq_retry_now(void *impl, const char *tenant, const char *id, int64_t now)
{
    return admin_op(impl, tenant, id, now, EWTP_STORE_RETRYING, Q_RETRY_NOW, "retry_now",
                    EWTP_STORE_RETRYING);
}

static int sq_chain_get(void *impl, const char *key, int64_t *number, char **ref)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    sqlite3_stmt *s;
    int rc = prep(c, Q_CHAIN_GET, &s);
    *number = 0;
    if (rc == 0) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        int x = sqlite3_step(s);
        if (x == SQLITE_ROW) {
            *number = sqlite3_column_int64(s, 0);
            if (ref && sqlite3_column_type(s, 1) != SQLITE_NULL) {
                *ref = col_dup(s, 1);
                if (!*ref)
                    rc = -EWTP_ENOMEM;
            }
        } else if (x != SQLITE_DONE) {
            rc = map_rc(x);
        }
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

static int sq_chain_set(void *impl, const char *key, int64_t last, const char *ref, int64_t now)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    sqlite3_stmt *s;
    int rc = prep(c, Q_CHAIN_PUT, &s);
    if (rc == 0) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, last);
        bind_str(s, 3, ref);
        sqlite3_bind_int64(s, 4, now);
        rc = step_done(s);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

static int sq_key_state_get(void *impl, const char *key, void **data, size_t *len)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    sqlite3_stmt *s;
    int rc = prep(c, Q_KSTATE_GET, &s);
    if (rc == 0) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        int x = sqlite3_step(s);
        if (x == SQLITE_ROW) {
            size_t n = (size_t)sqlite3_column_bytes(s, 0);
            const void *b = sqlite3_column_blob(s, 0);
            char *copy = malloc(n + 1);
            if (copy == NULL) {
                rc = -EWTP_ENOMEM;
            } else {
                if (n)
                    memcpy(copy, b, n);
                copy[n] = '\0';
                *data = copy;
                *len = n;
            }
        } else {
            rc = x == SQLITE_DONE ? -EWTP_ENOTFOUND : map_rc(x);
        }
        sqlite3_reset(s);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

static int sq_related(void *impl, const char *const *keys, size_t n, const char *exclude_tenant,
                      const char *exclude_id, struct ewtp_store_msg **out, size_t *n_out)
{
    /* The keys travel as one JSON array bound to json_each(): one prepared statement for
     * any number of keys. */
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(keys[i])) < 0) {
            json_decref(a);
            return -EWTP_EINVAL; /* not UTF-8 */
        }
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!text)
        return -EWTP_ENOMEM;
    struct sqlite_store *ss = impl;
    struct conn *c = read_lock(ss);
    sqlite3_stmt *s;
    /* Mostly nothing is related (a new order number): a probe per key says so first. */
    bool any = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && !any && i < n; i++) {
        rc = prep(c, Q_RELATED_ANY, &s);
        if (rc < 0)
            break;
        sqlite3_bind_text(s, 1, keys[i], -1, SQLITE_STATIC);
        bind_str(s, 2, exclude_tenant);
        bind_str(s, 3, exclude_id);
        rc = step_row(s);
        sqlite3_reset(s);
        any = rc == 0;
        if (rc == -EWTP_ENOTFOUND)
            rc = 0;
    }
    if (rc == 0 && !any) {
        *out = NULL;
        *n_out = 0;
    } else if (rc == 0) {
        rc = prep(c, Q_RELATED, &s);
        if (rc == 0) {
            sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
            bind_str(s, 2, exclude_tenant);
            bind_str(s, 3, exclude_id);
            rc = collect_msgs(s, RELATED_MAX, out, n_out);
        }
    }
    read_unlock(ss, c);
    free(text);
    return rc;
}

static int sq_counts(void *impl, struct ewtp_store_count **out, size_t *n)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    struct ewtp_store_count *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *s;
    int rc = prep(c, Q_COUNTS, &s), x = SQLITE_DONE;
    while (rc == 0 && (x = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct ewtp_store_count *nv = realloc(v, ncap * sizeof(*v));
            if (!nv) {
                rc = -EWTP_ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        v[cnt].plugin = col_dup(s, 0);
        v[cnt].state = col_state(s, 1);
        v[cnt].n = (uint64_t)sqlite3_column_int64(s, 2);
        cnt++;
        if (!v[cnt - 1].plugin)
            rc = -EWTP_ENOMEM;
    }
    if (rc == 0 && x != SQLITE_DONE)
        rc = map_rc(x);
    rc = unlock_durable(ss, rc);
    if (rc < 0) {
        ewtp_store_counts_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int sq_backlog(void *impl, int64_t now, uint64_t *depth, int64_t *oldest_age_ms)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    sqlite3_stmt *s;
    int rc = prep(c, Q_BACKLOG, &s);
    if (rc == 0) {
        int x = sqlite3_step(s);
        if (x == SQLITE_ROW) {
            *depth = (uint64_t)sqlite3_column_int64(s, 0);
            *oldest_age_ms =
                sqlite3_column_type(s, 1) == SQLITE_NULL ? 0 : now - sqlite3_column_int64(s, 1);
            if (*oldest_age_ms < 0)
                *oldest_age_ms = 0;
        } else {
            rc = map_rc(x);
        }
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

/* ---- open and close ----------------------------------------------------------------------- */

static int sq_claim_poll(void *impl, int64_t now, size_t limit, int64_t next_at,
                         struct ewtp_store_msg **out, size_t *n)
{
    return claim_msgs(impl, false, NULL, now, limit, next_at, out, n);
}

static int sq_poll_schedule(void *impl, uint64_t key, int64_t at)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        rc = exec_ii(c, Q_POLL_SET, (int64_t)key, at);
        if (rc == 0 && sqlite3_changes(c->db) == 0)
            rc = -EWTP_EINVAL;
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

/* ---- webhook outbox ----------------------------------------------------------------------- */

static int sq_webhook_enqueue(void *impl, uint64_t key, enum ewtp_store_state state, int64_t at,
                              int64_t now)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        enum ewtp_store_state cur;
        rc = find_seq(c, (int64_t)key, &cur, NULL);
        if (rc == 0)
            rc = webhook_insert(c, (int64_t)key, state, at, now);
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

static int sq_webhook_claim(void *impl, int64_t now, size_t limit, int64_t lease_ms,
                            struct ewtp_store_webhook **out, size_t *n)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    struct ewtp_store_webhook *w = calloc(limit, sizeof(*w));
    size_t cnt = 0;
    int rc = w ? exec_q(c, Q_BEGIN) : -EWTP_ENOMEM;
    if (rc == 0) {
        sqlite3_stmt *s;
        rc = prep(c, Q_WH_SELECT, &s);
        if (rc == 0) {
            sqlite3_bind_int64(s, 1, now);
            sqlite3_bind_int64(s, 2, (int64_t)limit);
            int x = SQLITE_DONE;
            while (rc == 0 && cnt < limit && (x = sqlite3_step(s)) == SQLITE_ROW) {
                struct ewtp_store_webhook *e = &w[cnt++];
                e->wid = (uint64_t)sqlite3_column_int64(s, 0);
                e->key = (uint64_t)sqlite3_column_int64(s, 1);
                e->tenant = col_dup(s, 2);
                e->id = col_dup(s, 3);
                e->state = col_dup(s, 4);
                e->at = sqlite3_column_int64(s, 5);
                e->attempts = (uint32_t)sqlite3_column_int64(s, 6) + 1;
                e->created_at = sqlite3_column_int64(s, 7);
                if (!e->tenant || !e->id || !e->state)
                    rc = -EWTP_ENOMEM;
            }
            if (rc == 0 && cnt < limit && x != SQLITE_DONE)
                rc = map_rc(x);
            sqlite3_reset(s);
        }
        for (size_t i = 0; rc == 0 && i < cnt; i++)
            rc = exec_ii(c, Q_WH_CLAIM, (int64_t)w[i].wid, now + lease_ms);
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    if (rc < 0 || cnt == 0) {
        ewtp_store_webhooks_free(w, cnt);
        w = NULL;
        cnt = 0;
    }
    *out = w;
    *n = cnt;
    return rc;
}

/* The message, state and attempts of outbox row wid, in the current transaction. */
static int webhook_get(struct conn *c, uint64_t wid, int64_t *seq, enum ewtp_store_state *state,
                       int64_t *attempts)
{
    sqlite3_stmt *s;
    int rc = prep(c, Q_WH_GET, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, (int64_t)wid);
    rc = step_row(s);
    if (rc < 0)
        return rc;
    *seq = sqlite3_column_int64(s, 0);
    *state = col_state(s, 1);
    *attempts = sqlite3_column_int64(s, 2);
    sqlite3_reset(s);
    return 0;
}

/* done, retry and give_up: the row must exist; one statement (and an event for give_up). */
static int webhook_end(struct sqlite_store *ss, uint64_t wid, bool retry, int64_t next_at,
                       const char *error, bool give_up, int64_t now)
{
    struct conn *c = lock(ss);
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        int64_t seq = 0, attempts = 0;
        enum ewtp_store_state state = EWTP_STORE_ACCEPTED;
        rc = webhook_get(c, wid, &seq, &state, &attempts);
        sqlite3_stmt *s = NULL;
        if (rc == 0 && (rc = prep(c, retry ? Q_WH_RETRY : Q_WH_DELETE, &s)) == 0) {
            sqlite3_bind_int64(s, 1, (int64_t)wid);
            if (retry) {
                sqlite3_bind_int64(s, 2, next_at);
                bind_str(s, 3, error);
            }
            rc = step_done(s);
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
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

static int sq_webhook_done(void *impl, uint64_t wid)
{
    return webhook_end(impl, wid, false, 0, NULL, false, 0);
}

static int sq_webhook_retry(void *impl, uint64_t wid, int64_t next_at, const char *error)
{
    return webhook_end(impl, wid, true, next_at, error, false, 0);
}

static int sq_webhook_give_up(void *impl, uint64_t wid, const char *error, int64_t now)
{
    return webhook_end(impl, wid, false, 0, error, true, now);
}

static int sq_webhook_pending(void *impl, uint64_t *n)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    sqlite3_stmt *s;
    int rc = prep(c, Q_WH_COUNT, &s);
    if (rc == 0) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *n = (uint64_t)sqlite3_column_int64(s, 0);
            rc = 0;
        } else {
            rc = map_rc(rc ? rc : SQLITE_ERROR);
        }
        sqlite3_reset(s);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

/* ---- evidence (store.h) -------------------------------------------------------------------- */

static int sq_evidence_add(void *impl, uint64_t key, const struct ewtp_store_evidence *e, size_t n,
                           int64_t now)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        enum ewtp_store_state st;
        rc = find_seq(c, (int64_t)key, &st, NULL);
        if (rc == 0)
            rc = insert_evidence(c, (int64_t)key, e, n, now);
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

static int sq_evidence_get(void *impl, const char *tenant, const char *id,
                           struct ewtp_store_evidence_row **out, size_t *n)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    int64_t seq = 0;
    enum ewtp_store_state st;
    struct ewtp_store_evidence_row *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = exec_q(c, Q_BEGIN_READ);
    if (rc == 0) {
        rc = find_tid(c, tenant, id, &seq, &st, NULL);
        sqlite3_stmt *s = NULL;
        if (rc == 0) {
            int x = sqlite3_prepare_v2(c->db,
                                       "SELECT at, kind, name, meta, body FROM evidence"
                                       " WHERE seq = ?1 ORDER BY eid",
                                       -1, &s, NULL);
            rc = x == SQLITE_OK ? 0 : map_rc(x);
        }
        if (rc == 0) {
            sqlite3_bind_int64(s, 1, seq);
            int x;
            while (rc == 0 && (x = sqlite3_step(s)) == SQLITE_ROW) {
                if (cnt == cap) {
                    size_t ncap = cap ? cap * 2 : 16;
                    struct ewtp_store_evidence_row *nv = realloc(v, ncap * sizeof(*nv));
                    if (!nv) {
                        rc = -EWTP_ENOMEM;
                        break;
                    }
                    v = nv;
                    cap = ncap;
                }
                struct ewtp_store_evidence_row *r = &v[cnt++];
                memset(r, 0, sizeof(*r));
                r->at = sqlite3_column_int64(s, 0);
                r->kind = col_dup(s, 1);
                r->name = col_dup(s, 2);
                r->meta = col_dup(s, 3);
                const void *b = sqlite3_column_blob(s, 4);
                r->body_len = (size_t)sqlite3_column_bytes(s, 4);
                r->body = malloc(r->body_len + 1);
                if (r->body) {
                    if (r->body_len)
                        memcpy(r->body, b, r->body_len);
                    r->body[r->body_len] = 0;
                }
                if (!r->kind || !r->name || !r->body)
                    rc = -EWTP_ENOMEM;
            }
            if (rc == 0 && x != SQLITE_DONE)
                rc = map_rc(x);
        }
        sqlite3_finalize(s);
        finish(c, 0);
    }
    rc = unlock_durable(ss, rc);
    if (rc < 0) {
        ewtp_store_evidence_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int sq_evidence_purge(void *impl, int64_t before, uint64_t *n)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        sqlite3_stmt *s = NULL;
        int x = sqlite3_prepare_v2(c->db, "DELETE FROM evidence WHERE at < ?1", -1, &s, NULL);
        rc = x == SQLITE_OK ? 0 : map_rc(x);
        if (rc == 0) {
            sqlite3_bind_int64(s, 1, before);
            x = sqlite3_step(s);
            rc = x == SQLITE_DONE ? 0 : map_rc(x);
            *n = rc == 0 ? (uint64_t)sqlite3_changes(c->db) : 0;
        }
        sqlite3_finalize(s);
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

static int sq_evidence_bytes(void *impl, uint64_t *bytes)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    sqlite3_stmt *s = NULL;
    int x = sqlite3_prepare_v2(
        c->db,
        "SELECT coalesce(sum(length(body) + coalesce(length(CAST(meta AS BLOB)), 0)), 0)"
        " FROM evidence",
        -1, &s, NULL);
    int rc = x == SQLITE_OK ? 0 : map_rc(x);
    if (rc == 0) {
        x = sqlite3_step(s);
        if (x == SQLITE_ROW)
            *bytes = (uint64_t)sqlite3_column_int64(s, 0);
        else
            rc = map_rc(x ? x : SQLITE_ERROR);
    }
    sqlite3_finalize(s);
    rc = unlock_durable(ss, rc);
    return rc;
}

/* The instance secret lives in a table of its own, created on first use rather than by a
 * schema version: it needs no upgrade step and older files simply lack it until asked. */
static int sq_instance_key(void *impl, const unsigned char fresh[32], unsigned char out[32])
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    int rc = exec_q(c, Q_BEGIN);
    sqlite3_stmt *s = NULL;
    if (rc == 0)
        rc = map_rc(sqlite3_exec(c->db,
                                 "CREATE TABLE IF NOT EXISTS instance_secret(id INTEGER PRIMARY KEY"
                                 " CHECK(id = 1), secret BLOB NOT NULL)",
                                 NULL, NULL, NULL));
    if (rc == 0)
        rc = map_rc(sqlite3_prepare_v2(c->db,
                                       "INSERT OR IGNORE INTO instance_secret(id, secret)"
                                       " VALUES(1, ?1)",
                                       -1, &s, NULL));
    if (rc == 0) {
        sqlite3_bind_blob(s, 1, fresh, 32, SQLITE_STATIC);
        int x = sqlite3_step(s);
        rc = x == SQLITE_DONE ? 0 : map_rc(x);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (rc == 0)
        rc = map_rc(sqlite3_prepare_v2(c->db, "SELECT secret FROM instance_secret WHERE id = 1", -1,
                                       &s, NULL));
    if (rc == 0) {
        int x = sqlite3_step(s);
        if (x == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 32)
            memcpy(out, sqlite3_column_blob(s, 0), 32);
        else
            rc = x == SQLITE_ROW || x == SQLITE_DONE ? -EWTP_EIO : map_rc(x);
    }
    sqlite3_finalize(s);
    rc = finish(c, rc);
    rc = unlock_durable(ss, rc);
    return rc;
}

/* ---- operations on a message (store.h) ------------------------------------------------ */

static int sq_op_request(void *impl, const char *tenant, const char *id, const char *op,
                         const char *reason, int64_t now, bool *repeat,
                         enum ewtp_store_state *state)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        int64_t seq = 0, attempts = 0;
        rc = find_tid(c, tenant, id, &seq, state, &attempts);
        if (rc == 0 && (*state == EWTP_STORE_REJECTED || *state == EWTP_STORE_CANCELLED))
            rc = -EWTP_EINVAL;
        sqlite3_stmt *s;
        if (rc == 0 && (rc = prep(c, Q_OP_LIVE, &s)) == 0) {
            sqlite3_bind_int64(s, 1, seq);
            sqlite3_bind_text(s, 2, op, -1, SQLITE_STATIC);
            rc = step_row(s);
            *repeat = rc == 0;
            rc = rc == -EWTP_ENOTFOUND ? 0 : rc;
            sqlite3_reset(s);
        }
        if (rc == 0 && !*repeat && (rc = prep(c, Q_OP_INSERT, &s)) == 0) {
            sqlite3_bind_int64(s, 1, seq);
            sqlite3_bind_text(s, 2, op, -1, SQLITE_STATIC);
            bind_str(s, 3, reason);
            sqlite3_bind_int64(s, 4, now);
            rc = step_done(s);
        }
        if (rc == 0 && !*repeat) {
            json_t *d = json_pack("{s:s?}", "reason", reason);
            char type[48];
            snprintf(type, sizeof(type), "%s_requested", op);
            rc = d ? insert_event(c, seq, now, type, *state, attempts, d) : -EWTP_ENOMEM;
            json_decref(d);
        }
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

/* Reads operation oid and its message into *o (strings malloc'd). */
static int load_op(struct conn *c, int64_t oid, struct ewtp_store_op *o)
{
    sqlite3_stmt *s;
    int rc = prep(c, Q_OP_GET, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, oid);
    rc = step_row(s);
    int64_t seq = 0;
    if (rc == 0) {
        o->oid = (uint64_t)sqlite3_column_int64(s, 0);
        seq = sqlite3_column_int64(s, 1);
        o->op = col_dup(s, 2);
        o->reason = col_dup(s, 3);
        o->attempts = (uint32_t)sqlite3_column_int64(s, 4);
        o->created_at = sqlite3_column_int64(s, 5);
        if (!o->op || (!o->reason && sqlite3_column_type(s, 3) != SQLITE_NULL))
            rc = -EWTP_ENOMEM;
    }
    sqlite3_reset(s);
    return rc == 0 ? load_msg(c, seq, &o->msg) : rc;
}

static int sq_op_claim(void *impl, int64_t now, size_t limit, int64_t lease_ms, const char *owner,
                       struct ewtp_store_op **out, size_t *n)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    int64_t *oids = calloc(limit, sizeof(*oids));
    struct ewtp_store_op *ops = NULL;
    size_t cnt = 0, done = 0;
    int rc = oids ? exec_q(c, Q_BEGIN) : -EWTP_ENOMEM;
    if (rc == 0) {
        rc = select_seqs(c, Q_OP_SELECT, now, limit, oids, &cnt);
        if (rc == 0 && cnt && !(ops = calloc(cnt, sizeof(*ops))))
            rc = -EWTP_ENOMEM;
        for (size_t i = 0; rc == 0 && i < cnt; i++) {
            sqlite3_stmt *s;
            rc = prep(c, Q_OP_LEASE, &s);
            if (rc == 0) {
                sqlite3_bind_int64(s, 1, oids[i]);
                sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
                sqlite3_bind_int64(s, 3, now + lease_ms);
                sqlite3_bind_int64(s, 4, now);
                rc = step_done(s);
            }
            if (rc == 0)
                rc = load_op(c, oids[i], &ops[i]);
            done = i + 1;
            if (rc == 0) {
                json_t *d = json_pack("{s:s,s:s}", "op", ops[i].op, "owner", owner);
                rc = d ? insert_event(c, (int64_t)ops[i].msg.key, now, "op_claimed",
                                      ops[i].msg.state, ops[i].attempts, d)
                       : -EWTP_ENOMEM;
                json_decref(d);
            }
        }
        rc = finish(c, rc);
        if (rc < 0) {
            ewtp_store_ops_free(ops, done);
            ops = NULL;
            cnt = 0;
        }
    }
    rc = unlock_durable(ss, rc);
    free(oids);
    if (rc < 0)
        return rc;
    *out = ops;
    *n = cnt;
    return 0;
}

static int sq_op_finish(void *impl, uint64_t oid, uint32_t attempt, enum ewtp_store_op_end end,
                        int64_t next_at, const char *detail, int64_t now)
{
    static const char *const states[] = {"done", "pending", "failed"};
    static const char *const events[] = {"op_done", "op_retry", "op_failed"};
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    int rc = exec_q(c, Q_BEGIN);
    if (rc == 0) {
        sqlite3_stmt *s;
        rc = prep(c, Q_OP_FINISH, &s);
        if (rc == 0) {
            sqlite3_bind_int64(s, 1, (int64_t)oid);
            sqlite3_bind_int64(s, 2, attempt);
            sqlite3_bind_text(s, 3, states[end], -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 4, next_at);
            sqlite3_bind_int64(s, 5, now);
            rc = step_done(s);
            if (rc == 0 && sqlite3_changes(c->db) == 0)
                rc = -EWTP_EINVAL; /* the lease was lost: another claim owns it now */
        }
        int64_t seq = 0;
        if (rc == 0 && (rc = prep(c, Q_OP_GET, &s)) == 0) {
            sqlite3_bind_int64(s, 1, (int64_t)oid);
            rc = step_row(s);
            if (rc == 0)
                seq = sqlite3_column_int64(s, 1);
            sqlite3_reset(s);
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
        rc = finish(c, rc);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

static int sq_ops_pending(void *impl, uint64_t *n)
{
    struct sqlite_store *ss = impl;
    struct conn *c = lock(ss);
    sqlite3_stmt *s;
    int rc = prep(c, Q_OP_COUNT, &s);
    if (rc == 0) {
        rc = step_row(s);
        if (rc == 0)
            *n = (uint64_t)sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
    }
    rc = unlock_durable(ss, rc);
    return rc;
}

/* Operations whose lease expired go back to pending, due now (inside requeue_expired's
 * transaction). */
static int requeue_expired_ops(struct conn *c, int64_t now)
{
    int64_t oids[256];
    size_t cnt = 0;
    int rc = select_seqs(c, Q_OP_EXPIRED, now, 256, oids, &cnt);
    for (size_t i = 0; rc == 0 && i < cnt; i++)
        rc = exec_ii(c, Q_OP_REQUEUE, oids[i], now);
    return rc;
}

static void conn_close(struct conn *c)
{
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(c->q[i]);
    sqlite3_close(c->db);
    memset(c, 0, sizeof(*c));
}

static void sq_close(void *impl)
{
    struct sqlite_store *ss = impl;
    if (!ss)
        return;
    if (ss->ck_started) {
        pthread_mutex_lock(&ss->ckmu);
        ss->ck_stop = true;
        pthread_cond_signal(&ss->ckcv);
        pthread_mutex_unlock(&ss->ckmu);
        pthread_join(ss->ck_thread, NULL);
    }
    conn_close(&ss->ck);
    conn_close(&ss->w);
    conn_close(&ss->m);
    for (int i = 0; i < READERS; i++) {
        conn_close(&ss->r[i]);
        pthread_mutex_destroy(&ss->rmu[i]);
    }
    pthread_mutex_destroy(&ss->mu);
    pthread_mutex_destroy(&ss->wmu);
    pthread_mutex_destroy(&ss->ckmu);
    pthread_cond_destroy(&ss->ckcv);
    if (ss->ws.fd >= 0)
        close(ss->ws.fd);
    free(ss->ws.wal_path);
    ewtp_groupsync_destroy(&ss->ws.g);
    free(ss->path);
    free(ss);
}

static int conn_open(struct conn *c, const char *path, int busy_ms, char **why)
{
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        if (why)
            *why = ewtp_store_asprintf("store: cannot open %s: %s", path,
                                       c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        return map_rc(rc) ? map_rc(rc) : -EWTP_EIO;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, busy_ms);
    /* journal_mode answers with a row: check it really switched (it cannot on some
     * filesystems, and silently keeping a rollback journal would change durability). */
    sqlite3_stmt *s = NULL;
    rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    const char *mode = NULL;
    if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(s, 0);
    bool wal = mode && strcmp(mode, "wal") == 0;
    sqlite3_finalize(s);
    if (!wal) {
        if (why)
            *why = ewtp_store_asprintf("store: %s: cannot switch to WAL journal mode: %s", path,
                                       sqlite3_errmsg(c->db));
        return -EWTP_EIO;
    }
    char *err = NULL;
    /* Issue 20: each commit of another connection empties this one's page cache (WAL), and
     * the pages are read again. Not through a memory map (mmap_size=0): with one, SQLite unmaps
     * the whole map at the next transaction after another connection's commit and faults the
     * pages in again (munmap alone was 4 % of ewtpd's CPU under wrk, perf), and every
     * connection's map of the file counts again in the RSS (152 to 240 MiB under load, 42 MiB
     * without; accepted/s the same within the noise of one run). The cache is per connection. */
    rc = sqlite3_exec(c->db,
                      "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                      " PRAGMA mmap_size=0; PRAGMA cache_size=-16384;"
                      " PRAGMA temp_store=MEMORY;",
                      NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        if (why)
            *why = ewtp_store_asprintf("store: %s: %s", path, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return -EWTP_EIO;
    }
    return 0;
}

/* A reader (query_only) or the checkpointer: a connection with a small page cache of its
 * own. */
static int side_open(struct conn *c, const char *path, int busy_ms, bool reader, char **why)
{
    int rc = conn_open(c, path, busy_ms, why);
    if (rc == 0 && sqlite3_exec(c->db,
                                reader ? "PRAGMA query_only=1; PRAGMA cache_size=-2048;"
                                       : "PRAGMA cache_size=-512;",
                                NULL, NULL, NULL) != SQLITE_OK) {
        if (why)
            *why = ewtp_store_asprintf("store: %s: %s", path, sqlite3_errmsg(c->db));
        rc = -EWTP_EIO;
    }
    return rc;
}

static atomic_uint_fast64_t checkpoints; /* ewtp_store_sqlite_checkpoints */

uint64_t ewtp_store_sqlite_checkpoints(void)
{
    return atomic_load(&checkpoints);
}

/* WAL hook of the writing connections, in place of SQLite's automatic checkpoint: past
 * CHECKPOINT_PAGES it only wakes the checkpointer. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    struct sqlite_store *ss = arg;
    if (pages >= CHECKPOINT_PAGES) {
        pthread_mutex_lock(&ss->ckmu);
        ss->ck_due = true;
        pthread_cond_signal(&ss->ckcv);
        pthread_mutex_unlock(&ss->ckmu);
    }
    return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
    struct sqlite_store *ss = arg;
    pthread_mutex_lock(&ss->ckmu);
    for (;;) {
        while (!ss->ck_due && !ss->ck_stop)
            pthread_cond_wait(&ss->ckcv, &ss->ckmu);
        if (ss->ck_stop)
            break;
        ss->ck_due = false;
        pthread_mutex_unlock(&ss->ckmu);
        /* A failure (busy, I/O) leaves the WAL longer; the next commit's hook asks again. */
        if (sqlite3_wal_checkpoint_v2(ss->ck.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) ==
            SQLITE_OK)
            atomic_fetch_add(&checkpoints, 1);
        pthread_mutex_lock(&ss->ckmu);
    }
    pthread_mutex_unlock(&ss->ckmu);
    return NULL;
}

/* Creates the schema on a new file, accepts the current version, refuses a newer one. */
static int schema_setup(struct conn *c, const char *path, char **why)
{
    char *err = NULL;
    int rc = sqlite3_exec(c->db,
                          "BEGIN IMMEDIATE;"
                          "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);",
                          NULL, NULL, &err);
    int64_t version = -1;
    if (rc == SQLITE_OK) {
        sqlite3_stmt *s = NULL;
        rc = sqlite3_prepare_v2(c->db, "SELECT max(version) FROM schema_version", -1, &s, NULL);
        if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW &&
            sqlite3_column_type(s, 0) != SQLITE_NULL)
            version = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    if (rc == SQLITE_OK && version < 0) {
        rc = sqlite3_exec(c->db, schema_sql, NULL, NULL, &err);
        if (rc == SQLITE_OK) {
            char ins[96];
            snprintf(ins, sizeof(ins), "INSERT INTO schema_version(version) VALUES(%d)",
                     SCHEMA_VERSION);
            rc = sqlite3_exec(c->db, ins, NULL, NULL, &err);
        }
        version = SCHEMA_VERSION;
    }
    if (rc == SQLITE_OK && version == 1) {
        /* Upgrade in place: the alias table, filled with the references known so far. */
        rc = sqlite3_exec(c->db,
                          SCHEMA_V2_SQL "INSERT OR IGNORE INTO refs(plugin, ref, seq)"
                                        " SELECT plugin, authority_ref, seq FROM messages"
                                        " WHERE authority_ref IS NOT NULL;"
                                        "INSERT INTO schema_version(version) VALUES(2);",
                          NULL, NULL, &err);
        version = 2;
    }
    if (rc == SQLITE_OK && version == 2) {
        /* Upgrade in place: an empty outbox (webhooks queued in memory before are gone). */
        rc = sqlite3_exec(c->db, SCHEMA_V3_SQL "INSERT INTO schema_version(version) VALUES(3);",
                          NULL, NULL, &err);
        version = 3;
    }
    if (rc == SQLITE_OK && version == 3) {
        /* Upgrade in place: no message waits yet. */
        rc = sqlite3_exec(c->db, SCHEMA_V4_SQL "INSERT INTO schema_version(version) VALUES(4);",
                          NULL, NULL, &err);
        version = 4;
    }
    if (rc == SQLITE_OK && version == 4) {
        /* Upgrade in place: no plugin state kept yet. */
        rc = sqlite3_exec(c->db, SCHEMA_V5_SQL "INSERT INTO schema_version(version) VALUES(5);",
                          NULL, NULL, &err);
        version = 5;
    }
    if (rc == SQLITE_OK && version == 5) {
        /* Upgrade in place: the ready index and its flag, computed for the queued messages
         * (the column may be there already: a file an older ewtpd was told to downgrade). */
        sqlite3_stmt *s = NULL;
        bool has_col = false;
        if (sqlite3_prepare_v2(c->db,
                               "SELECT 1 FROM pragma_table_info('messages')"
                               " WHERE name = 'blocked'",
                               -1, &s, NULL) == SQLITE_OK)
            has_col = sqlite3_step(s) == SQLITE_ROW;
        sqlite3_finalize(s);
        if (!has_col)
            rc = sqlite3_exec(c->db, SCHEMA_V6_COLUMN_SQL, NULL, NULL, &err);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(c->db, SCHEMA_V6_SQL "INSERT INTO schema_version(version) VALUES(6);",
                              NULL, NULL, &err);
        version = 6;
    }
    if (rc == SQLITE_OK && version == 6) {
        /* In place: the evidence table, empty (messages sent before keep none). */
        rc = sqlite3_exec(c->db, SCHEMA_V7_SQL "INSERT INTO schema_version(version) VALUES(7);",
                          NULL, NULL, &err);
        version = 7;
    }
    if (rc == SQLITE_OK && version == 7) {
        /* In place: the same index and triggers without temporary b-trees. */
        rc = sqlite3_exec(c->db, SCHEMA_V8_SQL "INSERT INTO schema_version(version) VALUES(8);",
                          NULL, NULL, &err);
        version = 8;
    }
    if (rc == SQLITE_OK && version > SCHEMA_VERSION) {
        if (why)
            *why = ewtp_store_asprintf("store: %s has schema version %" PRId64
                                       ", newer than this ewtpd understands (%d); "
                                       "run the newer ewtpd or restore a matching backup",
                                       path, version, SCHEMA_VERSION);
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return -EWTP_EUNSUPP;
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        if (why)
            *why = ewtp_store_asprintf("store: %s: cannot create the schema: %s", path,
                                       err ? err : sqlite3_errmsg(c->db));
        sqlite3_free(err);
        if (!sqlite3_get_autocommit(c->db))
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return map_rc(rc) ? map_rc(rc) : -EWTP_EIO;
    }
    return 0;
}

static const struct ewtp_store_ops sqlite_ops = {
    .name = "sqlite",
    .batch_begin = sq_batch_begin,
    .batch_accept = sq_batch_accept,
    .batch_commit = sq_batch_commit,
    .batch_rollback = sq_batch_rollback,
    .get = sq_get,
    .status_get = sq_status_get,
    .events = sq_events,
    .list = sq_list,
    .claim_due = sq_claim_due,
    .requeue_expired = sq_requeue_expired,
    .record_outcome = sq_record_outcome,
    .record_receipt = sq_record_receipt,
    .durable_defer = sq_durable_defer,
    .durable_end = sq_durable_end,
    .find_by_authority_ref = sq_find_by_authority_ref,
    .add_event = sq_add_event,
    .replay = sq_replay,
    .retry_now = sq_retry_now,
    .chain_get = sq_chain_get,
    .chain_set = sq_chain_set,
    .key_state_get = sq_key_state_get,
    .related = sq_related,
    .counts = sq_counts,
    .backlog = sq_backlog,
    .claim_poll = sq_claim_poll,
    .poll_schedule = sq_poll_schedule,
    .webhook_enqueue = sq_webhook_enqueue,
    .webhook_claim = sq_webhook_claim,
    .webhook_done = sq_webhook_done,
    .webhook_retry = sq_webhook_retry,
    .webhook_give_up = sq_webhook_give_up,
    .webhook_pending = sq_webhook_pending,
    .evidence_add = sq_evidence_add,
    .evidence_get = sq_evidence_get,
    .evidence_purge = sq_evidence_purge,
    .evidence_bytes = sq_evidence_bytes,
    .instance_key = sq_instance_key,
    .op_request = sq_op_request,
    .op_claim = sq_op_claim,
    .op_finish = sq_op_finish,
    .ops_pending = sq_ops_pending,
    .close = sq_close,
};

int ewtp_store_open_sqlite(const char *path, const struct ewtp_store_opts *opts,
                           struct ewtp_store **out, char **why)
{
    if (why)
        *why = NULL;
    if (!path || !out)
        return -EWTP_EINVAL;
    int busy = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    struct sqlite_store *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return -EWTP_ENOMEM;
    pthread_mutex_init(&ss->mu, NULL);
    pthread_mutex_init(&ss->wmu, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_mutex_init(&ss->rmu[i], NULL);
    pthread_mutex_init(&ss->ckmu, NULL);
    pthread_cond_init(&ss->ckcv, NULL);
    ss->m.wmu = &ss->wmu;
    ss->w.wmu = &ss->wmu;
    ewtp_groupsync_init(&ss->ws.g, wal_fdatasync, &ss->ws);
    ss->ws.fd = -1;
    ss->path = strdup(path);
    ss->ws.wal_path = ewtp_store_asprintf("%s-wal", path);
    int rc = ss->path && ss->ws.wal_path ? 0 : -EWTP_ENOMEM;
    if (rc == 0)
        rc = conn_open(&ss->m, path, busy, why);
    if (rc == 0)
        rc = schema_setup(&ss->m, path, why);
    /* After the schema (set up durably): the shared connection's commits are made durable by
     * unlock_durable(). */
    if (rc == 0 &&
        sqlite3_exec(ss->m.db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK)
        rc = -EWTP_EIO;
    if (rc == 0)
        ss->m.sync = &ss->ws;
    if (rc == 0)
        rc = conn_open(&ss->w, path, busy, why);
    for (int i = 0; rc == 0 && i < READERS; i++)
        rc = side_open(&ss->r[i], path, busy, true, why);
    if (rc == 0)
        rc = side_open(&ss->ck, path, busy, false, why);
    if (rc == 0) {
        int e = pthread_create(&ss->ck_thread, NULL, checkpointer_main, ss);
        if (e != 0) {
            if (why)
                *why = ewtp_store_asprintf("store: cannot start the checkpointer: %s", strerror(e));
            rc = -EWTP_EIO;
        }
        ss->ck_started = e == 0;
    }
    if (rc == 0) {
        sqlite3_wal_hook(ss->w.db, on_wal_commit, ss);
        sqlite3_wal_hook(ss->m.db, on_wal_commit, ss);
    }
    if (rc < 0) {
        sq_close(ss);
        return rc;
    }
    return ewtp_store_new(&sqlite_ops, ss, opts, out, why);
}
