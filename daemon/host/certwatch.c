/* certwatch.c — the certificate watch (certwatch.h). */
#include "certwatch.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <syslog.h>

#include <event2/event.h>

#include "certs.h"
#include "daemon.h"
#include "gen.h"
#include "reload.h"
#include "util.h"

#define CHECK_EVERY_MS (3600 * 1000) /* the hourly expiry check */
#define RELOAD_RETRY_MS (60 * 1000)  /* a failed reload for a signing key's successor */

struct ewtp_certwatch {
    struct ewtpd *d;
    struct event *tick;
    struct ewtp_cert_alerts *alerts;
    uint64_t gen_id;         /* the generation last checked */
    int64_t last_ms;         /* the previous tick */
    int64_t next_check_ms;   /* the next hourly check */
    int64_t reload_retry_ms; /* no reload for a signing key before this */
};

static void say(void *arg, int priority, const char *line)
{
    (void)arg;
    ewtpd_log(priority, "%s", line);
}

static void check(struct ewtp_certwatch *w, const struct ewtp_certs *s, int64_t now)
{
    ewtp_cert_alerts_check(w->alerts, s, now, say, w);
    w->next_check_ms = now + CHECK_EVERY_MS;
}

/* Logs each successor whose from passed between the previous tick and now. */
static bool takeovers(struct ewtp_certwatch *w, const struct ewtp_certs *s, int64_t now)
{
    bool any = false;
    for (size_t i = 0; i < ewtp_certs_count(s); i++) {
        const struct ewtp_cert_info *ci = ewtp_certs_at(s, i);
        if (!ci->next || ci->from_ms <= w->last_ms || ci->from_ms > now)
            continue;
        char at[40], fp[100];
        ewtpd_log(LOG_NOTICE,
                  "certificate %s %s: its successor (%s, %s, sha256 %s) takes over from %s%s",
                  ewtp_cert_use_name(ci->use), ci->name, ci->setting, ci->subject,
                  ewtp_cert_colon_hex(ci->sha256, fp, sizeof(fp)),
                  ewtp_fmt_time(at, sizeof(at), ci->from_ms),
                  ci->use == EWTP_CERT_TLS ? " for new connections"
                  : ci->use == EWTP_CERT_CLIENT
                      ? " for new requests"
                      : ": rebuilding the generation so that signatures use it");
        any = true;
    }
    return any;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ewtp_certwatch *w = arg;
    struct ewtpd *d = w->d;
    if (d->stopping || d->gen == NULL)
        return;
    const struct ewtp_certs *s = ewtp_gen_certs(d->gen);
    int64_t now = ewtpd_now_ms();
    bool due = takeovers(w, s, now);
    if (ewtp_gen_id(d->gen) != w->gen_id) {
        w->gen_id = ewtp_gen_id(d->gen);
        due = true;
    }
    if (due || now >= w->next_check_ms)
        check(w, s, now);
    if (ewtp_certs_signing_stale(s, now) && now >= w->reload_retry_ms) {
        w->reload_retry_ms = now + RELOAD_RETRY_MS;
        if (ewtpd_reload(d, NULL, NULL) != 0)
            ewtpd_log(LOG_ERR, "certificate rollover: cannot start the reload that switches "
                               "signing keys; retrying in a minute");
    }
    w->last_ms = now;
}

struct ewtp_certwatch *ewtp_certwatch_start(struct ewtpd *d)
{
    struct ewtp_certwatch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->d = d;
    w->alerts = ewtp_cert_alerts_new();
    w->tick = event_new(d->base, -1, EV_PERSIST, on_tick, w);
    struct timeval second = {1, 0};
    if (w->alerts == NULL || w->tick == NULL || event_add(w->tick, &second) != 0) {
        ewtp_certwatch_free(w);
        return NULL;
    }
    w->last_ms = ewtpd_now_ms();
    w->gen_id = ewtp_gen_id(d->gen);
    check(w, ewtp_gen_certs(d->gen), w->last_ms);
    return w;
}

void ewtp_certwatch_free(struct ewtp_certwatch *w)
{
    if (w == NULL)
        return;
    if (w->tick)
        event_free(w->tick);
    ewtp_cert_alerts_free(w->alerts);
    free(w);
}
