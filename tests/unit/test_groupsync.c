/* test_groupsync.c — a sync shared by the changes made while it was pending (core/groupsync.h):
 * every waiter returns only after a sync that began after its change, concurrent changes
 * share syncs, and a failed sync fails the waiters it was to cover but not later ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <ewtp/errors.h>

#include "groupsync.h"

static atomic_uint_fast64_t changes;      /* changes made so far */
static atomic_uint_fast64_t durable_upto; /* the changes a completed sync covered */
static atomic_int fail_next;              /* the next sync fails */

static int fake_sync(void *arg)
{
    (void)arg;
    uint64_t seen = atomic_load(&changes); /* everything made before the sync began */
    struct timespec ts = {0, 200 * 1000};  /* a disk's flush: others change meanwhile */
    nanosleep(&ts, NULL);
    if (atomic_exchange(&fail_next, 0))
        return -EWTP_EIO;
    uint64_t cur = atomic_load(&durable_upto);
    while (seen > cur && !atomic_compare_exchange_weak(&durable_upto, &cur, seen))
        ;
    return 0;
}

struct writer {
    struct ewtp_groupsync *g;
    int n, late; /* waits that returned before their change was covered */
};

static void *write_many(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < w->n; i++) {
        uint64_t c = atomic_fetch_add(&changes, 1) + 1;
        uint64_t t = ewtp_groupsync_ticket(w->g);
        if (ewtp_groupsync_wait(w->g, t) != 0 || atomic_load(&durable_upto) < c)
            w->late++;
    }
    return NULL;
}

static void test_shared_and_after_the_change(void **state)
{
    (void)state;
    struct ewtp_groupsync g;
    ewtp_groupsync_init(&g, fake_sync, NULL);
    enum { THREADS = 8, EACH = 100 };
    struct writer w[THREADS];
    pthread_t tid[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct writer){.g = &g, .n = EACH};
        assert_int_equal(pthread_create(&tid[i], NULL, write_many, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(w[i].late, 0);
    }
    uint64_t syncs = ewtp_groupsync_count(&g);
    print_message("%d changes from %d threads: %llu syncs\n", THREADS * EACH, THREADS,
                  (unsigned long long)syncs);
    assert_true(syncs >= 1);
    assert_true(syncs < THREADS * EACH); /* shared: 8 writers never need 800 */
    /* Alone: one change, one sync. */
    uint64_t t = ewtp_groupsync_ticket(&g);
    assert_int_equal(ewtp_groupsync_wait(&g, t), 0);
    assert_int_equal(ewtp_groupsync_count(&g), syncs + 1);
    /* Already covered: no sync. */
    assert_int_equal(ewtp_groupsync_wait(&g, t), 0);
    assert_int_equal(ewtp_groupsync_count(&g), syncs + 1);
    ewtp_groupsync_destroy(&g);
}

static void test_failed_sync(void **state)
{
    (void)state;
    struct ewtp_groupsync g;
    ewtp_groupsync_init(&g, fake_sync, NULL);
    uint64_t t = ewtp_groupsync_ticket(&g);
    atomic_store(&fail_next, 1);
    assert_int_equal(ewtp_groupsync_wait(&g, t), -EWTP_EIO);
    assert_int_equal(ewtp_groupsync_count(&g), 0);
    /* The next change syncs again; the earlier one stays failed (after a failed fsync the
     * kernel may have dropped its pages, and a later fsync that succeeds says nothing of
     * them), and so does a range of changes that it begins. */
    uint64_t t2 = ewtp_groupsync_ticket(&g);
    assert_int_equal(ewtp_groupsync_wait(&g, t2), 0);
    assert_int_equal(ewtp_groupsync_wait(&g, t), -EWTP_EIO);
    assert_int_equal(ewtp_groupsync_wait_range(&g, t, t2), -EWTP_EIO);
    assert_int_equal(ewtp_groupsync_wait_range(&g, t2, t2), 0);
    assert_int_equal(ewtp_groupsync_count(&g), 1);
    /* A failure that began before a range's first change does not touch it. */
    uint64_t t3 = ewtp_groupsync_ticket(&g);
    atomic_store(&fail_next, 1);
    assert_int_equal(ewtp_groupsync_wait(&g, t3), -EWTP_EIO);
    uint64_t t4 = ewtp_groupsync_ticket(&g), t5 = ewtp_groupsync_ticket(&g);
    assert_int_equal(ewtp_groupsync_wait_range(&g, t4, t5), 0);
    assert_int_equal(ewtp_groupsync_count(&g), 2);
    ewtp_groupsync_destroy(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_and_after_the_change),
        cmocka_unit_test(test_failed_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
