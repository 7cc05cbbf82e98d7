/* Delivery and store metrics with integer histograms. */
#include "metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bucket bounds in microseconds: 1 ms .. 60 s. */
static const uint64_t bounds_us[] = {1000,    5000,     10000,    25000,   50000,
                                     100000,  250000,   500000,   1000000, 2500000,
                                     5000000, 10000000, 30000000, 60000000};
#define N_BOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))

struct histogram {
    uint64_t buckets[N_BOUNDS];
    uint64_t count, sum_us;
};

struct series {
    struct series *next;
    char *plugin, *outcome;
    struct histogram h;
};

struct ewtp_metrics {
    pthread_mutex_t mu;
    struct series *deliveries;
    struct histogram commits;
};

uint64_t ewtp_metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void observe(struct histogram *h, uint64_t us)
{
    for (size_t i = 0; i < N_BOUNDS; i++)
        if (us <= bounds_us[i])
            h->buckets[i]++;
    h->count++;
    h->sum_us += us;
}

struct ewtp_metrics *ewtp_metrics_new(void)
{
    struct ewtp_metrics *m = calloc(1, sizeof(*m));
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void ewtp_metrics_free(struct ewtp_metrics *m)
{
    if (m == NULL)
        return;
    while (m->deliveries) {
        struct series *next = m->deliveries->next;
        free(m->deliveries->plugin);
        free(m->deliveries->outcome);
        free(m->deliveries);
        m->deliveries = next;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void ewtp_metrics_delivery(struct ewtp_metrics *m, const char *plugin, const char *outcome,
                           uint64_t latency_us)
{
    if (m == NULL)
        return;
    plugin = plugin ? plugin : "";
    outcome = outcome ? outcome : "";
    pthread_mutex_lock(&m->mu);
    struct series *s = m->deliveries;
    while (s && (strcmp(s->plugin, plugin) != 0 || strcmp(s->outcome, outcome) != 0))
        s = s->next;
    if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL) {
        s->plugin = strdup(plugin);
        s->outcome = strdup(outcome);
        if (s->plugin == NULL || s->outcome == NULL) {
            free(s->plugin);
            free(s->outcome);
            free(s);
            s = NULL;
        } else {
            s->next = m->deliveries;
            m->deliveries = s;
        }
    }
    if (s)
        observe(&s->h, latency_us);
    pthread_mutex_unlock(&m->mu);
}

void ewtp_metrics_store_commit(struct ewtp_metrics *m, uint64_t latency_us)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    observe(&m->commits, latency_us);
    pthread_mutex_unlock(&m->mu);
}

/* "0.0025" for 2500 us: decimal seconds from integers, trailing zeros trimmed. */
static void seconds(char *buf, size_t size, uint64_t us)
{
    snprintf(buf, size, "%llu.%06llu", (unsigned long long)(us / 1000000),
             (unsigned long long)(us % 1000000));
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
}

static void write_histogram(FILE *f, const char *name, const char *labels,
                            const struct histogram *h)
{
    char s[48];
    for (size_t i = 0; i < N_BOUNDS; i++) {
        seconds(s, sizeof(s), bounds_us[i]);
        fprintf(f, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, labels[0] ? "," : "", s,
                (unsigned long long)h->buckets[i]);
    }
    fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, labels[0] ? "," : "",
            (unsigned long long)h->count);
    seconds(s, sizeof(s), h->sum_us);
    fprintf(f, "%s_sum%s%s%s %s\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
            s[0] ? s : "0");
    fprintf(f, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
            (unsigned long long)h->count);
}

void ewtp_metrics_write(struct ewtp_metrics *m, FILE *f)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    fputs("# HELP ewtp_delivery_attempts_total Delivery attempts by plugin instance and outcome.\n"
          "# TYPE ewtp_delivery_attempts_total counter\n",
          f);
    for (struct series *s = m->deliveries; s; s = s->next)
        fprintf(f, "ewtp_delivery_attempts_total{plugin=\"%s\",outcome=\"%s\"} %llu\n", s->plugin,
                s->outcome, (unsigned long long)s->h.count);
    fputs("# HELP ewtp_delivery_latency_seconds From claim to recorded outcome of an attempt.\n"
          "# TYPE ewtp_delivery_latency_seconds histogram\n",
          f);
    for (struct series *s = m->deliveries; s; s = s->next) {
        char labels[512];
        snprintf(labels, sizeof(labels), "plugin=\"%s\",outcome=\"%s\"", s->plugin, s->outcome);
        write_histogram(f, "ewtp_delivery_latency_seconds", labels, &s->h);
    }
    fputs("# HELP ewtp_store_commit_latency_seconds Duration of one group commit (one fsync).\n"
          "# TYPE ewtp_store_commit_latency_seconds histogram\n",
          f);
    write_histogram(f, "ewtp_store_commit_latency_seconds", "", &m->commits);
    pthread_mutex_unlock(&m->mu);
}
