/* reload.c — generations in use (reload.h): the current one, the replaced ones still
 * draining, and a reload built on a worker and swapped in on the loop. */
#include "reload.h"

#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "gen.h"
#include "workers.h"

struct ewtp_gen *ewtpd_gen_acquire(struct ewtpd *d)
{
    ewtp_gen_ref(d->gen);
    return d->gen;
}

/* ---- retired generations: freed after their last user, a slow drain is logged ------------ */

/* How long a replaced generation may stay in use before the log says so. */
#define DRAIN_TIMEOUT_MS 30000

struct ewtpd_retired {
    struct ewtpd_retired *next;
    struct ewtp_gen *gen; /* our reference */
    int64_t since_ms;
};

static void retire(struct ewtpd *d, struct ewtp_gen *g)
{
    struct ewtpd_retired *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        ewtp_gen_unref(g); /* the last user frees it all the same */
        return;
    }
    r->gen = g;
    r->since_ms = ewtpd_now_ms();
    r->next = d->retired;
    d->retired = r;
}

/* Every second: drop generations nobody uses any more; log those still in use after the
 * drain timeout (a stuck delivery or request) and let their last user free them. */
void ewtpd_retired_sweep(struct ewtpd *d)
{
    int64_t now = ewtpd_now_ms();
    for (struct ewtpd_retired **pp = &d->retired; *pp;) {
        struct ewtpd_retired *r = *pp;
        size_t users = ewtp_gen_users(r->gen) - 1;
        bool late = now - r->since_ms >= DRAIN_TIMEOUT_MS;
        if (users == 0 || late) {
            if (users == 0)
                ewtpd_log(LOG_DEBUG, "generation %llu drained after %lld ms",
                          (unsigned long long)ewtp_gen_id(r->gen), (long long)(now - r->since_ms));
            else
                ewtpd_log(LOG_WARNING,
                          "generation %llu still has %zu users %lld s after it was replaced; "
                          "it is freed when the last one finishes",
                          (unsigned long long)ewtp_gen_id(r->gen), users,
                          (long long)((now - r->since_ms) / 1000));
            *pp = r->next;
            ewtp_gen_unref(r->gen);
            free(r);
            continue;
        }
        pp = &r->next;
    }
}

void ewtpd_retired_free_all(struct ewtpd *d)
{
    while (d->retired) {
        struct ewtpd_retired *r = d->retired;
        d->retired = r->next;
        ewtp_gen_unref(r->gen);
        free(r);
    }
}

/* ---- reload: build off the loop on a worker, swap on the loop ----------------------------- */

struct reload_job {
    struct ewtpd *d;
    uint64_t id;
    struct ewtp_gen *gen;
    struct ewtp_errors *why;
    int rc;
    ewtpd_reload_fn done;
    void *arg;
};

static void reload_build(void *arg)
{
    struct reload_job *j = arg;
    j->rc = ewtp_gen_build(j->d->config_path, j->id, &j->gen, j->why);
}

static uint64_t monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void reload_swap(void *arg)
{
    struct reload_job *j = arg;
    struct ewtpd *d = j->d;
    /* Two reloads may build at once; never replace a newer generation by an older one. */
    bool ok = j->rc == 0 && !d->stopping && j->id > ewtp_gen_id(d->gen);
    if (ok) {
        struct ewtp_gen *old = d->gen;
        d->gen = j->gen;
        j->gen = NULL;
        retire(d, old); /* freed after its last request or delivery */
        d->reloads_ok++;
        free(d->last_reload_error);
        d->last_reload_error = NULL;
        ewtpd_log(LOG_INFO, "reloaded %s: generation %llu", d->config_path,
                  (unsigned long long)j->id);
        sd_notifyf(0, "READY=1\nSTATUS=generation %llu", (unsigned long long)j->id);
    } else {
        if (j->rc == 0)
            ewtp_errors_add(j->why, "", "reload", "superseded by a newer reload or shutdown");
        d->reloads_failed++;
        const char *first =
            ewtp_errors_count(j->why) ? ewtp_errors_at(j->why, 0)->message : "unknown error";
        free(d->last_reload_error);
        d->last_reload_error = strdup(first);
        ewtpd_log_errors("reload refused, keeping the running configuration: ", j->why);
        sd_notifyf(0, "READY=1\nSTATUS=generation %llu; reload failed: %s",
                   (unsigned long long)ewtp_gen_id(d->gen), first);
    }
    if (j->done)
        j->done(j->arg, ok, ewtp_gen_id(d->gen), j->why);
    ewtp_gen_unref(j->gen);
    ewtp_errors_free(j->why);
    free(j);
}

int ewtpd_reload(struct ewtpd *d, ewtpd_reload_fn done, void *arg)
{
    if (d->stopping)
        return -EWTP_EINVAL;
    struct reload_job *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->why = ewtp_errors_new()) == NULL) {
        free(j);
        return -EWTP_ENOMEM;
    }
    j->d = d;
    j->id = ++d->next_gen_id;
    j->done = done;
    j->arg = arg;
    /* One datagram with both, or Type=notify-reload managers hang (patroni#3598). */
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
               (unsigned long long)monotonic_usec(), d->config_path);
    int rc = ewtp_workers_submit(d->workers, reload_build, reload_swap, j);
    if (rc != 0) {
        ewtp_errors_free(j->why);
        free(j);
    }
    return rc;
}
