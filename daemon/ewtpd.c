/* ewtpd — the gateway service.
 *
 *   ewtpd -c FILE        run in the foreground (systemd Type=notify)
 *   ewtpd -c FILE -t     check the configuration (and load its plugins), print why, exit
 *
 * Startup order: configuration generation (plugins loaded and created), store (leases of a
 * previous run returned to the queue), workers, dispatcher, listeners, READY=1. Shutdown on
 * SIGTERM/SIGINT in the reverse order; a 202 was only ever sent after the store committed,
 * so stopping at any point loses nothing acknowledged.
 */
#include "daemon.h"
#include "dispatcher.h"
#include "gen.h"
#include "http.h"
#include "reload.h"
#include "services.h"
#include "store.h"
#include "workers.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "admin.h"
#include "certs.h"
#include "certwatch.h"
#include "hostctx.h"
#include "metrics.h"

/* Every second: replaced generations nobody uses any more are freed (reload.h). */
static void on_drain_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ewtpd_retired_sweep(arg);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    ewtpd_reload(arg, NULL, NULL);
}

/* WATCHDOG=1 from the loop itself: a loop stuck anywhere stops the pings. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    sd_notify(0, "WATCHDOG=1");
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct ewtpd *d = arg;
    if (d->stopping)
        return;
    d->stopping = true;
    ewtpd_log(LOG_INFO, "signal %d: stopping", (int)sig);
    ewtp_admin_free(d->admin);
    d->admin = NULL;
    sd_notify(0, "STOPPING=1");
    ewtp_http_stop(d);
    ewtp_dispatcher_stop(d);
    /* Let in-flight replies and deliveries finish, bounded. */
    struct timeval grace = {2, 0};
    event_base_loopexit(d->base, &grace);
}

static int check_config(const char *path)
{
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_gen *g = NULL;
    int rc = ewtp_gen_build(path, 0, &g, why);
    if (rc == 0) {
        printf("%s: configuration ok (%zu plugin instances)\n", path, ewtp_gen_instance_count(g));
        ewtp_certs_print(ewtp_gen_certs(g), ewtpd_now_ms(), stdout);
        ewtp_gen_unref(g);
    } else {
        for (size_t i = 0; i < ewtp_errors_count(why); i++)
            fprintf(stderr, "%s\n", ewtp_errors_at(why, i)->message);
        if (ewtp_errors_count(why) == 0)
            fprintf(stderr, "%s: %s\n", path, ewtp_strerror(rc));
    }
    ewtp_errors_free(why);
    return rc == 0 ? 0 : 1;
}

static int mkdir_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(dir, 0750);
        *p = '/';
    }
    return mkdir(dir, 0750) == 0 || errno == EEXIST ? 0 : -1;
}

static void on_store_commit(void *arg, uint64_t commit_us, size_t accepts)
{
    (void)accepts;
    struct ewtpd *d = arg;
    ewtp_metrics_store_commit(d->metrics, commit_us);
}

static int run(const char *path)
{
    struct ewtpd d = {.config_path = path, .started_ms = ewtpd_now_ms()};
    struct ewtp_errors *why = ewtp_errors_new();
    int rc = 1;
    evthread_use_pthreads();
    d.base = event_base_new();
    if (d.base == NULL || why == NULL)
        goto out;
    if (ewtp_gen_build(path, ++d.next_gen_id, &d.gen, why) != 0) {
        ewtpd_log_errors("", why);
        goto out;
    }
    const struct ewtp_config *conf = ewtp_gen_config(d.gen);
    char *store_why = NULL;
    d.metrics = ewtp_metrics_new();
    struct ewtp_store_opts store_opts = {.on_commit = on_store_commit, .on_commit_arg = &d};
    if (d.metrics != NULL && conf->store.backend &&
        strcmp(conf->store.backend, "postgresql") == 0) {
        /* Several nodes may share the database (store_pg.c); the conninfo is read here and
         * dropped once connected (it may hold a password). */
        char *conninfo = NULL;
        int prc = ewtp_store_pg_conninfo_read(conf->store.conninfo_file, &conninfo, &store_why);
        if (prc == 0)
            prc = ewtp_store_open_pg(conninfo, conf->store.pool_size, &store_opts, &d.store,
                                     &store_why);
        if (conninfo)
            explicit_bzero(conninfo, strlen(conninfo));
        free(conninfo);
        if (prc != 0) {
            ewtpd_log(LOG_ERR, "store %s: %s", conf->store.conninfo_file,
                      store_why ? store_why : "cannot open");
            free(store_why);
            goto out;
        }
        ewtpd_log(LOG_INFO, "store: PostgreSQL (%u pool connections and a writer)",
                  conf->store.pool_size);
    } else if (d.metrics == NULL || mkdir_parent(conf->store.path) != 0 ||
               ewtp_store_open_sqlite(conf->store.path, &store_opts, &d.store, &store_why) != 0) {
        ewtpd_log(LOG_ERR, "store %s: %s", conf->store.path,
                  store_why ? store_why : strerror(errno));
        free(store_why);
        goto out;
    }
    size_t requeued = 0;
    ewtp_store_requeue_expired(d.store, ewtpd_now_ms(), &requeued);
    if (requeued)
        ewtpd_log(LOG_INFO, "%zu deliveries of a previous run returned to the queue", requeued);
    d.workers = ewtp_workers_new(d.base, conf->delivery.workers, conf->delivery.nice);
    if (d.workers == NULL)
        goto out;
    if (ewtp_dispatcher_start(&d, why) != 0 || ewtp_http_start(&d, why) != 0 ||
        (conf->admin_socket && ewtp_admin_start(&d, conf->admin_socket, &d.admin, why) != 0)) {
        ewtpd_log_errors("", why);
        goto out;
    }
    struct event *ev_drain = event_new(d.base, -1, EV_PERSIST, on_drain_check, &d);
    struct timeval second = {1, 0};
    if (ev_drain)
        event_add(ev_drain, &second);
    uint64_t watchdog_usec = 0;
    struct event *ev_watchdog = NULL;
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
        ev_watchdog = event_new(d.base, -1, EV_PERSIST, on_watchdog, &d);
        struct timeval half = {(time_t)(watchdog_usec / 2000000u),
                               (suseconds_t)(watchdog_usec / 2 % 1000000u)};
        event_add(ev_watchdog, &half);
    }
    struct event *ev_term = evsignal_new(d.base, SIGTERM, on_stop, &d);
    struct event *ev_int = evsignal_new(d.base, SIGINT, on_stop, &d);
    struct event *ev_hup = evsignal_new(d.base, SIGHUP, on_sighup, &d);
    signal(SIGPIPE, SIG_IGN);
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    event_add(ev_hup, NULL);
    if (ewtp_gen_config(d.gen)->dev_mode)
        ewtpd_log(LOG_WARNING,
                  "dev_mode = true: short bearer tokens and secret files readable by others are "
                  "accepted (every listener is on loopback); never use it in production");
    for (size_t i = 0; i < ewtp_gen_config(d.gen)->n_tenants; i++) {
        const struct ewtp_tenant_conf *t = &ewtp_gen_config(d.gen)->tenants[i];
        if (t->n_parties == 0)
            ewtpd_log(LOG_WARNING, "tenant %s has no parties: sender codes are not checked", t->id);
    }
    /* Certificate expiry and rollover (issue 18): checked now, after reloads and hourly. */
    struct ewtp_certwatch *certwatch = ewtp_certwatch_start(&d);
    ewtpd_log(LOG_INFO, "ewtpd ready: %s, generation %llu, %zu plugin instances", path,
              (unsigned long long)ewtp_gen_id(d.gen), ewtp_gen_instance_count(d.gen));
    sd_notifyf(0, "READY=1\nSTATUS=generation %llu", (unsigned long long)ewtp_gen_id(d.gen));
    event_base_dispatch(d.base);
    rc = 0;
    ewtp_certwatch_free(certwatch);
    event_free(ev_term);
    event_free(ev_int);
    event_free(ev_hup);
    if (ev_watchdog)
        event_free(ev_watchdog);
    if (ev_drain)
        event_free(ev_drain);
out:
    ewtpd_services_free(&d);
    ewtp_errors_free(why);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool test = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:th")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'h':
            printf("usage: ewtpd -c FILE [-t]\n");
            return 0;
        default:
            fprintf(stderr, "usage: ewtpd -c FILE [-t]\n");
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        fprintf(stderr, "usage: ewtpd -c FILE [-t]\n");
        return 2;
    }
    return test ? check_config(path) : run(path);
}
