/* groupsync.c — a sync shared by the changes made while it was pending (groupsync.h). */
#include "groupsync.h"

void ewtp_groupsync_init(struct ewtp_groupsync *g, ewtp_groupsync_fn sync, void *arg)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->taken = g->synced = g->syncs = 0;
    g->syncing = false;
    g->ends = 0;
    g->failed_upto = 0;
    g->failed_rc = 0;
    g->sync = sync;
    g->arg = arg;
}

void ewtp_groupsync_destroy(struct ewtp_groupsync *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

uint64_t ewtp_groupsync_ticket(struct ewtp_groupsync *g)
{
    pthread_mutex_lock(&g->mu);
    uint64_t t = ++g->taken;
    pthread_mutex_unlock(&g->mu);
    return t;
}

int ewtp_groupsync_wait_range(struct ewtp_groupsync *g, uint64_t first, uint64_t t)
{
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    for (;;) {
        /* A sync that failed after the first of these changes was made was to cover it. */
        if (g->failed_upto >= first) {
            rc = g->failed_rc;
            break;
        }
        if (g->synced >= t)
            break;
        if (g->syncing) { /* wait for it to end, then look again */
            uint64_t seen = g->ends;
            while (g->syncing && g->ends == seen)
                pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        /* Every ticket up to target belongs to a change already made: this sync covers them
         * all. Not under the mutex, so tickets are taken meanwhile. */
        uint64_t target = g->taken;
        g->syncing = true;
        pthread_mutex_unlock(&g->mu);
        int r = g->sync(g->arg);
        pthread_mutex_lock(&g->mu);
        g->syncing = false;
        g->ends++;
        if (r == 0) {
            g->syncs++;
            if (target > g->synced)
                g->synced = target;
        } else if (target > g->failed_upto) {
            g->failed_upto = target;
            g->failed_rc = r;
        }
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

int ewtp_groupsync_wait(struct ewtp_groupsync *g, uint64_t t)
{
    return ewtp_groupsync_wait_range(g, t, t);
}

uint64_t ewtp_groupsync_count(struct ewtp_groupsync *g)
{
    pthread_mutex_lock(&g->mu);
    uint64_t n = g->syncs;
    pthread_mutex_unlock(&g->mu);
    return n;
}
