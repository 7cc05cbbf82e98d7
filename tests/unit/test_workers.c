/* test_workers.c — the worker pool's lanes (core/workers.h): general threads run at the
 * background nice value they were given (delivery.nice), interactive jobs never run on them
 * then, and every job's done callback comes back on the event loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "workers.h"

#define JOBS 64

struct job_seen {
    int nice;      /* the running thread's nice value */
    bool on_loop;  /* done ran on the loop's thread */
    bool finished; /* done ran */
};

static pthread_t loop_thread;
static atomic_int done_count;
static struct event_base *base;

static void record_nice(void *arg)
{
    struct job_seen *s = arg;
    errno = 0;
    s->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
}

static void record_done(void *arg)
{
    struct job_seen *s = arg;
    s->on_loop = pthread_equal(pthread_self(), loop_thread);
    s->finished = true;
    if (atomic_fetch_add(&done_count, 1) + 1 == 2 * JOBS)
        event_base_loopbreak(base);
}

/* JOBS jobs on each lane of a pool; *general and *inter get what each saw. */
static void run_pool(int general_nice, struct job_seen *general, struct job_seen *inter)
{
    assert_int_equal(evthread_use_pthreads(), 0);
    base = event_base_new();
    assert_non_null(base);
    loop_thread = pthread_self();
    atomic_store(&done_count, 0);
    struct ewtp_workers *w = ewtp_workers_new(base, 3, general_nice);
    assert_non_null(w);
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(ewtp_workers_submit(w, record_nice, record_done, &general[i]), 0);
        assert_int_equal(ewtp_workers_submit_interactive(w, record_nice, record_done, &inter[i]),
                         0);
    }
    /* Bounded: the loop breaks on the last done, or gives up after 30 s. */
    struct timeval limit = {30, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    assert_int_equal(atomic_load(&done_count), 2 * JOBS);
    assert_int_equal(ewtp_workers_pending(w), 0);
    ewtp_workers_free(w);
    event_base_free(base);
}

static void test_background_lane(void **state)
{
    (void)state;
    static struct job_seen general[JOBS], inter[JOBS];
    int own = getpriority(PRIO_PROCESS, 0);
    run_pool(7, general, inter);
    for (int i = 0; i < JOBS; i++) {
        assert_true(general[i].finished && general[i].on_loop);
        assert_true(inter[i].finished && inter[i].on_loop);
        /* Lowered (never above the weakest, 19), and the interactive jobs at the
         * process's own priority: none ran on a lowered general thread. */
        assert_int_equal(general[i].nice, own + 7 > 19 ? 19 : own + 7);
        assert_int_equal(inter[i].nice, own);
    }
}

static void test_no_background(void **state)
{
    (void)state;
    static struct job_seen general[JOBS], inter[JOBS];
    int own = getpriority(PRIO_PROCESS, 0);
    run_pool(0, general, inter);
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(general[i].nice, own);
        assert_int_equal(inter[i].nice, own);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_background_lane),
        cmocka_unit_test(test_no_background),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
