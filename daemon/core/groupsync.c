/* groupsync.c — a sync shared by the changes made while it was pending (groupsync.h). */
#include "groupsync.h"

void ewtp_groupsync_init(struct ewtp_groupsync *g, ewtp_groupsync_fn sync, void *arg)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->taken = g->synced = g->syncs = 0;
    g->syncing = false;
    g->failed = 0;
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

int ewtp_groupsync_wait(struct ewtp_groupsync *g, uint64_t t)
{
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    while (g->synced < t) {
        if (g->syncing) {
            uint64_t seen = g->syncs;
            while (g->syncing && g->syncs == seen && g->failed == 0)
                pthread_cond_wait(&g->cv, &g->mu);
            /* The sync that ran failed: it may have been the one to cover t. */
            if (g->failed != 0 && g->synced < t) {
                rc = g->failed;
                break;
            }
            continue;
        }
        /* Every ticket up to target belongs to a change already made: this sync covers them
         * all. Not under the mutex, so tickets are taken meanwhile. */
        uint64_t target = g->taken;
        g->syncing = true;
        g->failed = 0;
        pthread_mutex_unlock(&g->mu);
        int r = g->sync(g->arg);
        pthread_mutex_lock(&g->mu);
        g->syncing = false;
        if (r == 0) {
            g->syncs++;
            if (target > g->synced)
                g->synced = target;
        }
        g->failed = r;
        pthread_cond_broadcast(&g->cv);
        if (r != 0) {
            rc = r;
            break;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

uint64_t ewtp_groupsync_count(struct ewtp_groupsync *g)
{
    pthread_mutex_lock(&g->mu);
    uint64_t n = g->syncs;
    pthread_mutex_unlock(&g->mu);
    return n;
}
