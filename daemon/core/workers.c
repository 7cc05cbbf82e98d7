/* Thread pool with completions delivered on the libevent loop. */
#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include <ewtp/errors.h>

struct job {
    ewtp_work_fn work, done;
    void *arg;
    struct job *next;
};

struct job_queue {
    struct job *head, *tail;
};

struct ewtp_workers {
    pthread_mutex_t lock;
    pthread_cond_t ready;       /* general threads: a job of either lane */
    pthread_cond_t ready_inter; /* interactive threads: a job of their lane */
    struct job_queue todo, todo_inter, finished;
    unsigned idle_inter; /* interactive threads waiting on ready_inter */
    int general_nice;    /* > 0: general threads run lowered and take no interactive jobs */
    size_t pending;
    bool stopping;
    struct event *wake; /* activated when finished gains jobs */
    pthread_t *threads;
    unsigned n_threads;
};

/* The job this thread runs (ewtp_workers_skip_done). */
static _Thread_local struct job *running;

void ewtp_workers_skip_done(void)
{
    if (running)
        running->done = NULL;
}

/* A thread's lanes: general threads take their own jobs first, then interactive ones. */
struct worker_arg {
    struct ewtp_workers *w;
    bool general;
};

static void queue_push(struct job_queue *q, struct job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static struct job *queue_take_all(struct job_queue *q)
{
    struct job *all = q->head;
    q->head = q->tail = NULL;
    return all;
}

static struct job *queue_pop(struct job_queue *q)
{
    struct job *j = q->head;
    if (j) {
        q->head = j->next;
        if (q->head == NULL)
            q->tail = NULL;
    }
    return j;
}

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    struct ewtp_workers *w = wa->w;
    bool general = wa->general;
    free(wa);
    /* Linux sets nice values per thread (setpriority on the thread's id), here general_nice
     * above the process's own (at most 19). Lowering a priority never needs a privilege;
     * should it fail, the thread runs at the process's priority and takes no interactive
     * jobs all the same. */
    bool background = general && w->general_nice > 0;
    if (background) {
        int own = getpriority(PRIO_PROCESS, 0);
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
                          own + w->general_nice > 19 ? 19 : own + w->general_nice);
    }
    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct job *j;
        for (;;) {
            j = general ? queue_pop(&w->todo) : NULL;
            if (j == NULL && !background)
                j = queue_pop(&w->todo_inter);
            if (j || w->stopping)
                break;
            if (general) {
                pthread_cond_wait(&w->ready, &w->lock);
            } else {
                w->idle_inter++;
                pthread_cond_wait(&w->ready_inter, &w->lock);
                w->idle_inter--;
            }
        }
        if (j == NULL)
            break; /* stopping and nothing left */
        pthread_mutex_unlock(&w->lock);
        bool had_done = j->done != NULL;
        running = j;
        j->work(j->arg);
        running = NULL;
        pthread_mutex_lock(&w->lock);
        if (had_done && j->done == NULL) { /* ewtp_workers_skip_done: ends here */
            w->pending--;
            free(j);
            continue;
        }
        bool was_empty = w->finished.head == NULL;
        queue_push(&w->finished, j);
        if (was_empty && !w->stopping)
            event_active(w->wake, EV_READ, 0);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* On the loop: run every finished job's done callback. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ewtp_workers *w = arg;
    pthread_mutex_lock(&w->lock);
    struct job *j = queue_take_all(&w->finished);
    pthread_mutex_unlock(&w->lock);
    while (j) {
        struct job *next = j->next;
        if (j->done)
            j->done(j->arg);
        pthread_mutex_lock(&w->lock);
        w->pending--;
        pthread_mutex_unlock(&w->lock);
        free(j);
        j = next;
    }
}

/* The interactive lane's own threads: one per online CPU, so that API work can use every
 * core while general threads sit in I/O; at most 8 (they take CPU-bound jobs only). */
static unsigned interactive_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
}

static bool start_thread(struct ewtp_workers *w, bool general)
{
    struct worker_arg *wa = malloc(sizeof(*wa));
    if (wa == NULL)
        return false;
    wa->w = w;
    wa->general = general;
    if (pthread_create(&w->threads[w->n_threads], NULL, worker_main, wa) != 0) {
        free(wa);
        return false;
    }
    w->n_threads++;
    return true;
}

struct ewtp_workers *ewtp_workers_new(struct event_base *base, unsigned n, int general_nice)
{
    if (n == 0)
        n = 1;
    unsigned ni = interactive_threads();
    struct ewtp_workers *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->general_nice = general_nice > 19 ? 19 : general_nice < 0 ? 0 : general_nice;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->ready, NULL);
    pthread_cond_init(&w->ready_inter, NULL);
    w->wake = event_new(base, -1, 0, on_wake, w);
    w->threads = calloc(n + ni, sizeof(*w->threads));
    if (w->wake == NULL || w->threads == NULL) {
        ewtp_workers_free(w);
        return NULL;
    }
    unsigned general = 0;
    for (unsigned i = 0; i < n; i++)
        general += start_thread(w, true);
    for (unsigned i = 0; i < ni; i++)
        start_thread(w, false);
    if (general == 0) {
        ewtp_workers_free(w);
        return NULL;
    }
    return w;
}

void ewtp_workers_free(struct ewtp_workers *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->ready);
    pthread_cond_broadcast(&w->ready_inter);
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < w->n_threads; i++)
        pthread_join(w->threads[i], NULL);
    /* Done callbacks are not run any more: their owners are being torn down. */
    for (struct job *j = queue_take_all(&w->finished); j;) {
        struct job *next = j->next;
        free(j);
        j = next;
    }
    if (w->wake)
        event_free(w->wake);
    pthread_cond_destroy(&w->ready);
    pthread_cond_destroy(&w->ready_inter);
    pthread_mutex_destroy(&w->lock);
    free(w->threads);
    free(w);
}

static int submit(struct ewtp_workers *w, bool interactive, ewtp_work_fn work, ewtp_work_fn done,
                  void *arg)
{
    struct job *j = malloc(sizeof(*j));
    if (j == NULL)
        return -EWTP_ENOMEM;
    j->work = work;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        free(j);
        return -EWTP_EINVAL;
    }
    w->pending++;
    if (interactive) {
        queue_push(&w->todo_inter, j);
        /* An idle thread of the lane takes it; else a general one, when it has time (and
         * runs at the process's priority). */
        if (w->idle_inter || w->general_nice > 0)
            pthread_cond_signal(&w->ready_inter);
        else
            pthread_cond_signal(&w->ready);
    } else {
        queue_push(&w->todo, j);
        pthread_cond_signal(&w->ready);
    }
    pthread_mutex_unlock(&w->lock);
    return 0;
}

int ewtp_workers_submit(struct ewtp_workers *w, ewtp_work_fn work, ewtp_work_fn done, void *arg)
{
    return submit(w, false, work, done, arg);
}

int ewtp_workers_submit_interactive(struct ewtp_workers *w, ewtp_work_fn work, ewtp_work_fn done,
                                    void *arg)
{
    return submit(w, true, work, done, arg);
}

size_t ewtp_workers_pending(struct ewtp_workers *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->pending;
    pthread_mutex_unlock(&w->lock);
    return n;
}
