/* Thread pool with completions delivered on the libevent loop. */
#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

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
    pthread_cond_t ready;
    struct job_queue todo, finished;
    size_t pending;
    bool stopping;
    struct event *wake; /* activated when finished gains jobs */
    pthread_t *threads;
    unsigned n_threads;
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

static void *worker_main(void *arg)
{
    struct ewtp_workers *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->todo.head == NULL && !w->stopping)
            pthread_cond_wait(&w->ready, &w->lock);
        struct job *j = w->todo.head;
        if (j == NULL)
            break; /* stopping and nothing left */
        w->todo.head = j->next;
        if (w->todo.head == NULL)
            w->todo.tail = NULL;
        pthread_mutex_unlock(&w->lock);
        j->work(j->arg);
        pthread_mutex_lock(&w->lock);
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

struct ewtp_workers *ewtp_workers_new(struct event_base *base, unsigned n)
{
    if (n == 0)
        n = 1;
    struct ewtp_workers *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->ready, NULL);
    w->wake = event_new(base, -1, 0, on_wake, w);
    w->threads = calloc(n, sizeof(*w->threads));
    if (w->wake == NULL || w->threads == NULL) {
        ewtp_workers_free(w);
        return NULL;
    }
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0)
            break;
        w->n_threads++;
    }
    if (w->n_threads == 0) {
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
    pthread_mutex_destroy(&w->lock);
    free(w->threads);
    free(w);
}

int ewtp_workers_submit(struct ewtp_workers *w, ewtp_work_fn work, ewtp_work_fn done, void *arg)
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
    queue_push(&w->todo, j);
    w->pending++;
    pthread_cond_signal(&w->ready);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

size_t ewtp_workers_pending(struct ewtp_workers *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->pending;
    pthread_mutex_unlock(&w->lock);
    return n;
}
