/* metrics.h — counters and latency histograms that several modules feed and /metrics shows.
 *
 * Thread-safe (one mutex; observations are a few additions). Latencies are integer
 * microseconds; the text output writes them as decimal seconds without floating point.
 * Series are keyed by label values and created on first observation (bounded: plugin
 * instances x outcomes). */
#ifndef EWTP_METRICS_H
#define EWTP_METRICS_H

#include <stdint.h>
#include <stdio.h>

struct ewtp_metrics;

struct ewtp_metrics *ewtp_metrics_new(void);
void ewtp_metrics_free(struct ewtp_metrics *m);

/* One delivery attempt of plugin instance `plugin` ended in `outcome` (a state name:
 * submitted, approved, rejected, retrying, dead ...) after latency_us. */
void ewtp_metrics_delivery(struct ewtp_metrics *m, const char *plugin, const char *outcome,
                           uint64_t latency_us);
/* One group commit of the store took latency_us. */
void ewtp_metrics_store_commit(struct ewtp_metrics *m, uint64_t latency_us);
/* Writes ewtp_delivery_attempts_total{plugin,outcome}, ewtp_delivery_latency_seconds
 * (histogram by plugin and outcome) and ewtp_store_commit_latency_seconds in the Prometheus
 * text format. */
void ewtp_metrics_write(struct ewtp_metrics *m, FILE *f);
/* Monotonic microseconds, for latencies. */
uint64_t ewtp_metrics_now_us(void);

#endif
