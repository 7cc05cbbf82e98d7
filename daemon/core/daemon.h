/* daemon.h — ewtpd's shared context and the services every layer of the daemon uses: the
 * clock and the log. The bottom of daemon/ (core/): it names the other layers' objects only
 * as opaque pointers, so it includes none of their headers.
 *
 * One event loop thread owns the libevent base, the listeners, the HTTP client connections,
 * the timers and the current generation pointer. Worker threads (workers.h) parse, validate,
 * translate, sign and call the store; the store's writer thread commits accepts. Nothing
 * blocks the loop.
 *
 * Layers, from the bottom (a folder uses only those before it; tests/cli/layering.sh checks
 * the #include graph, and each folder is a static library linked in this order):
 *   core/ conf/ host/ store/ transport/ webhooks/ delivery/ api/, then ewtpd.c (main, the only
 *   file that knows every layer); ctl/ (ewtpctl) uses core, conf, host and store.
 */
#ifndef EWTP_DAEMON_H
#define EWTP_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct ewtp_gen;
struct ewtp_store;
struct ewtp_workers;
struct ewtp_http;
struct ewtp_dispatcher;
struct ewtp_admin;
struct ewtp_metrics;
struct ewtpd_retired;

struct ewtpd {
    struct event_base *base;
    const char *config_path;
    struct ewtp_gen *gen; /* current generation; read and swapped on the loop thread only */
    uint64_t next_gen_id;
    struct ewtp_store *store;
    struct ewtp_workers *workers;
    struct ewtp_http *http;
    struct ewtp_dispatcher *dispatcher;
    struct ewtp_admin *admin;
    struct ewtp_metrics *metrics;  /* delivery and store latencies (metrics.h) */
    struct ewtpd_retired *retired; /* replaced generations still draining (host/reload.c) */
    int64_t started_ms;
    bool stopping; /* set on SIGTERM/SIGINT: no new work, drain, then exit */
    /* Reload outcomes (metrics, status). last_reload_error is malloc'd or NULL. */
    uint64_t reloads_ok, reloads_failed;
    char *last_reload_error;
};

/* Wall clock, ms since the epoch. */
int64_t ewtpd_now_ms(void);
/* A log line to journald (under systemd) or stderr, with personal data redacted
 * (util.h ewtp_redact). priority is syslog's (LOG_ERR ... LOG_DEBUG). */
void ewtpd_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same about one message: journald gets the fields EWTP_MSG_ID, TENANT, PLUGIN (any may
 * be NULL) and MESSAGE_ID (a sd-id128 naming the event type, or NULL). */
void ewtpd_log_msg(int priority, const char *message_id, const char *msg_id, const char *tenant,
                   const char *plugin, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Each error of why as a LOG_ERR line, after prefix. */
struct ewtp_errors;
void ewtpd_log_errors(const char *prefix, const struct ewtp_errors *why);

#endif
