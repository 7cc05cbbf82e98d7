/* store_sqlite.h — what the SQLite store shows beyond store.h, for tests and benchmarks. */
#ifndef EWTP_STORE_SQLITE_H
#define EWTP_STORE_SQLITE_H

#include <stdint.h>

/* SQLite VM steps run by the claim select (Q_CLAIM_SELECT) of every SQLite store of the
 * process so far: the work a claim costs, to compare backlogs of different sizes without a
 * clock (DECISIONS "Tests, CI and measurements"). */
uint64_t ewtp_store_sqlite_claim_steps(void);
/* The same for the operation claim's select (Q_OP_SELECT). */
uint64_t ewtp_store_sqlite_op_claim_steps(void);

/* WAL checkpoints the stores' checkpointer threads completed so far. The writing connections
 * have no automatic checkpoint (their WAL hook wakes the checkpointer instead), so a group
 * commit never checkpoints: this is where every checkpoint happens while a store is open. */
uint64_t ewtp_store_sqlite_checkpoints(void);

/* fdatasyncs of the WAL made for the shared connection's commits (synchronous=NORMAL, each
 * caller waiting for one that began after its commit; store_sqlite.c): fewer than those
 * commits when several commit at once. */
uint64_t ewtp_store_sqlite_wal_syncs(void);

#endif
