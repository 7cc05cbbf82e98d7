/* groupsync.h — one sync shared by every change made while it was pending ("group commit" of
 * an fsync): the SQLite store's shared connection syncs its WAL with it (store_sqlite.c), the
 * spool transport its out-folder after a rename (transport_spool.c).
 *
 * A writer makes its change (the commit's frames written, the file renamed), takes a ticket,
 * then waits: when no sync runs it becomes the one that syncs, covering every ticket taken so
 * far; when one runs it waits for it and, if its ticket came too late for that one, syncs or
 * waits again. The sync function runs without the group's mutex held, so tickets are taken
 * meanwhile and share the next sync. Thread-safe.
 */
#ifndef EWTP_GROUPSYNC_H
#define EWTP_GROUPSYNC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Makes every change made before the call durable: 0, or a negative code. */
typedef int (*ewtp_groupsync_fn)(void *arg);

struct ewtp_groupsync {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t taken, synced; /* tickets given out; the last one a completed sync covers */
    bool syncing;
    uint64_t ends; /* syncs ended, failed ones included (what waiters watch) */
    /* Every ticket up to failed_upto was to be covered by a sync that failed: after a failed
     * fsync Linux may have dropped the dirty pages, and a later fsync that succeeds says
     * nothing of them, so such a change stays failed (failed_rc) for good. */
    uint64_t failed_upto;
    int failed_rc;
    ewtp_groupsync_fn sync;
    void *arg;
    uint64_t syncs; /* completed syncs (for tests and metrics) */
};

void ewtp_groupsync_init(struct ewtp_groupsync *g, ewtp_groupsync_fn sync, void *arg);
void ewtp_groupsync_destroy(struct ewtp_groupsync *g);
/* After the change is made: its ticket (never 0). */
uint64_t ewtp_groupsync_ticket(struct ewtp_groupsync *g);
/* Returns once a sync that began after ticket t was taken completed: 0, or the code of the
 * failed sync that was to cover it (the change may then not survive a crash), now and at
 * every later wait for t: a later sync does not make it durable. */
int ewtp_groupsync_wait(struct ewtp_groupsync *g, uint64_t t);
/* The same for the changes of tickets first to t (taken in that order by the caller, with
 * others' between): 0 once all of them are durable. */
int ewtp_groupsync_wait_range(struct ewtp_groupsync *g, uint64_t first, uint64_t t);
/* Completed syncs so far. */
uint64_t ewtp_groupsync_count(struct ewtp_groupsync *g);

#endif
