/* The admin socket: one JSON line in, one JSON line out. */
#include "admin.h"

#include "dispatcher.h"
#include "gen.h"
#include "reload.h"
#include "store.h"
#include "workers.h"
#include "api_json.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

/* A request line longer than this is not an admin command. */
#define ADMIN_LINE_MAX 4096

struct ewtp_admin {
    struct ewtpd *d;
    struct evconnlistener *listener;
    char *path;
    struct admin_conn *conns; /* open connections, freed with the admin */
};

struct admin_conn {
    struct ewtp_admin *admin;
    struct bufferevent *bev;
    struct admin_conn *next, **prevp;
    json_t *request;
    bool busy;     /* a worker job or a reload holds c: it answers later */
    bool orphaned; /* the client or the admin socket went away meanwhile */
    bool replying;
};

static void conn_unlink(struct admin_conn *c)
{
    if (c->prevp == NULL)
        return;
    if (c->next)
        c->next->prevp = c->prevp;
    *c->prevp = c->next;
    c->prevp = NULL;
    c->next = NULL;
}

static void conn_free(struct admin_conn *c)
{
    conn_unlink(c);
    if (c->bev)
        bufferevent_free(c->bev);
    json_decref(c->request);
    free(c);
}

/* The client or the socket is gone: free now, or when the pending answer arrives. */
static void conn_drop(struct admin_conn *c)
{
    if (!c->busy) {
        conn_free(c);
        return;
    }
    conn_unlink(c);
    bufferevent_free(c->bev);
    c->bev = NULL;
    c->admin = NULL;
    c->orphaned = true;
}

/* Sends the reply line and closes once it is written. */
static void on_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct admin_conn *c = arg;
    if (c->replying)
        conn_free(c);
}

static void send_reply(struct admin_conn *c, json_t *reply)
{
    c->busy = false;
    if (c->orphaned) {
        json_decref(reply);
        conn_free(c);
        return;
    }
    char *text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    c->replying = true;
    bufferevent_disable(c->bev, EV_READ);
    if (text == NULL) {
        conn_free(c);
        return;
    }
    bufferevent_write(c->bev, text, strlen(text));
    bufferevent_write(c->bev, "\n", 1);
    free(text);
}

static json_t *error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *error_reply(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

/* ---- commands that need the store run on a worker --------------------------------------- */

struct store_job {
    struct admin_conn *conn;
    struct ewtp_store *store;
    struct ewtp_gen *gen;
    int64_t started_ms;
    uint64_t reloads_ok, reloads_failed;
    char *last_reload_error;
    json_t *reply;
};

static void status_work(struct store_job *j)
{
    struct ewtp_store_count *counts = NULL;
    size_t n = 0;
    uint64_t depth = 0;
    int64_t oldest = 0;
    int64_t now = ewtpd_now_ms();
    if (ewtp_store_counts(j->store, &counts, &n) != 0 ||
        ewtp_store_backlog(j->store, now, &depth, &oldest) != 0) {
        j->reply = error_reply("the store did not answer");
        ewtp_store_counts_free(counts, n);
        return;
    }
    json_t *plugins = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_object_get(plugins, counts[i].plugin);
        if (p == NULL) {
            p = json_object();
            json_object_set_new(plugins, counts[i].plugin, p);
        }
        json_object_set_new(p, ewtp_store_state_name(counts[i].state),
                            json_integer((json_int_t)counts[i].n));
    }
    ewtp_store_counts_free(counts, n);
    j->reply = json_pack(
        "{s:b, s:I, s:s, s:I, s:o, s:I, s:I, s:I, s:I, s:s?}", "ok", 1, "generation",
        (json_int_t)ewtp_gen_id(j->gen), "config", ewtp_gen_config(j->gen)->path, "uptime_s",
        (json_int_t)((now - j->started_ms) / 1000), "messages", plugins, "queue_depth",
        (json_int_t)depth, "oldest_pending_age_s", (json_int_t)(oldest / 1000), "reloads_ok",
        (json_int_t)j->reloads_ok, "reloads_failed", (json_int_t)j->reloads_failed,
        "last_reload_error", j->last_reload_error);
}

static void messages_work(struct store_job *j)
{
    json_t *req = j->conn->request;
    struct ewtp_store_filter f = {
        .state = json_string_value(json_object_get(req, "state")),
        .destination = json_string_value(json_object_get(req, "destination")),
        .limit = (size_t)json_integer_value(json_object_get(req, "limit")),
        .after = json_string_value(json_object_get(req, "after")),
    };
    struct ewtp_store_page page;
    int rc = ewtp_store_list(j->store, &f, &page);
    json_t *list = rc == 0 ? ewtp_api_list_obj(&page) : NULL;
    if (rc == 0)
        ewtp_store_page_free(&page);
    if (list == NULL) {
        j->reply = error_reply(rc == -EWTP_EINVAL ? "unknown state or bad cursor"
                                                  : "the store did not answer");
        return;
    }
    json_object_set_new(list, "ok", json_true());
    j->reply = list;
}

/* The tenant of id among the messages in state (when the request names no tenant). */
static int find_tenant(struct ewtp_store *st, const char *id, const char *state, char **tenant)
{
    *tenant = NULL;
    int found = 0;
    char *cursor = NULL;
    for (int page = 0; page < 1000; page++) {
        struct ewtp_store_filter f = {.state = state, .limit = 1000, .after = cursor};
        struct ewtp_store_page pg;
        int rc = ewtp_store_list(st, &f, &pg);
        free(cursor);
        cursor = NULL;
        if (rc < 0)
            return -EWTP_EIO;
        for (size_t i = 0; i < pg.n; i++) {
            if (strcmp(pg.items[i].id, id) != 0)
                continue;
            if (found++ == 0)
                *tenant = strdup(pg.items[i].tenant);
        }
        cursor = pg.next;
        pg.next = NULL;
        ewtp_store_page_free(&pg);
        if (cursor == NULL)
            break;
    }
    free(cursor);
    if (found > 1) {
        free(*tenant);
        *tenant = NULL;
        return -EWTP_ERANGE;
    }
    return found ? 0 : -EWTP_ENOTFOUND;
}

static void requeue_work(struct store_job *j, bool replay)
{
    json_t *req = j->conn->request;
    const char *id = json_string_value(json_object_get(req, "id"));
    const char *given = json_string_value(json_object_get(req, "tenant"));
    const char *state = replay ? "dead" : "retrying";
    if (id == NULL) {
        j->reply = error_reply("%s needs an id", replay ? "replay" : "retry-now");
        return;
    }
    char *tenant = given ? strdup(given) : NULL;
    int rc = given ? 0 : find_tenant(j->store, id, state, &tenant);
    if (rc == -EWTP_ERANGE) {
        j->reply = error_reply("%s: several tenants have a %s message with this id: name the "
                               "tenant (--tenant)",
                               id, state);
    } else if (rc != 0) {
        j->reply = error_reply("%s: no %s message with this id", id, state);
    } else {
        int64_t now = ewtpd_now_ms();
        rc = replay ? ewtp_store_replay(j->store, tenant, id, now)
                    : ewtp_store_retry_now(j->store, tenant, id, now);
        j->reply = rc == 0 ? json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "id", id, "tenant", tenant,
                                       "state", replay ? "accepted" : "retrying")
                   : rc == -EWTP_ENOTFOUND ? error_reply("%s: no such message", id)
                                           : error_reply("%s: not %s now", id, state);
    }
    free(tenant);
}

/* ewtpctl chain set KEY NUMBER [PREVREF]: the next message of KEY gets NUMBER. */
static void chain_set_work(struct store_job *j)
{
    json_t *req = j->conn->request;
    const char *key = json_string_value(json_object_get(req, "key"));
    json_int_t number = json_integer_value(json_object_get(req, "number"));
    const char *ref = json_string_value(json_object_get(req, "prev_ref"));
    if (key == NULL || *key == '\0' || number < 1) {
        j->reply = error_reply("chain set needs a key and a number from 1");
        return;
    }
    int rc = ewtp_store_chain_set(j->store, key, (int64_t)number, ref, ewtpd_now_ms());
    if (rc != 0) {
        j->reply = error_reply("chain %s: not set: %s", key, ewtp_strerror(rc));
        return;
    }
    ewtpd_log(LOG_WARNING, "admin: chain %s set: next number %lld%s%s", key, (long long)number,
              ref ? " after " : "", ref ? ref : "");
    j->reply =
        json_pack("{s:b, s:s, s:I, s:s?}", "ok", 1, "key", key, "number", number, "prev_ref", ref);
}

static void store_job_work(void *arg)
{
    struct store_job *j = arg;
    const char *cmd = json_string_value(json_object_get(j->conn->request, "cmd"));
    if (strcmp(cmd, "chain-set") == 0)
        chain_set_work(j);
    else if (strcmp(cmd, "status") == 0)
        status_work(j);
    else if (strcmp(cmd, "messages") == 0)
        messages_work(j);
    else
        requeue_work(j, strcmp(cmd, "replay") == 0);
}

static void store_job_done(void *arg)
{
    struct store_job *j = arg;
    const char *cmd = json_string_value(json_object_get(j->conn->request, "cmd"));
    if (!j->conn->orphaned && j->reply && json_is_true(json_object_get(j->reply, "ok")) &&
        strcmp(cmd, "status") != 0 && strcmp(cmd, "messages") != 0)
        ewtp_dispatcher_kick(j->conn->admin->d); /* a replayed message is due now */
    send_reply(j->conn, j->reply ? j->reply : error_reply("out of memory"));
    ewtp_gen_unref(j->gen);
    free(j->last_reload_error);
    free(j);
}

static void start_store_job(struct admin_conn *c)
{
    struct ewtpd *d = c->admin->d;
    struct store_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        send_reply(c, error_reply("out of memory"));
        return;
    }
    j->conn = c;
    j->store = d->store;
    j->gen = ewtpd_gen_acquire(d);
    j->started_ms = d->started_ms;
    j->reloads_ok = d->reloads_ok;
    j->reloads_failed = d->reloads_failed;
    j->last_reload_error = d->last_reload_error ? strdup(d->last_reload_error) : NULL;
    c->busy = true;
    if (ewtp_workers_submit(d->workers, store_job_work, store_job_done, j) != 0) {
        ewtp_gen_unref(j->gen);
        free(j->last_reload_error);
        free(j);
        send_reply(c, error_reply("ewtpd is stopping"));
    }
}

/* ---- commands answered on the loop -------------------------------------------------------- */

static json_t *plugins_reply(struct ewtpd *d)
{
    json_t *list = json_array();
    for (size_t i = 0; i < ewtp_gen_instance_count(d->gen); i++) {
        const struct ewtp_gen_instance *gi = ewtp_gen_instance_at(d->gen, i);
        const struct ewtp_plugin_handle *h = ewtp_instance_handle(gi->inst);
        char abi[32];
        snprintf(abi, sizeof(abi), "%u.%u", gi->plugin->abi_major, gi->plugin->abi_minor);
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "instance", gi->conf->name,
                            "plugin", gi->plugin->name, "country", gi->plugin->country, "version",
                            gi->plugin->version ? gi->plugin->version : "", "abi", abi, "file",
                            ewtp_plugin_path(h), "sha256", ewtp_plugin_sha256(h)));
    }
    return json_pack("{s:b, s:I, s:o}", "ok", 1, "generation", (json_int_t)ewtp_gen_id(d->gen),
                     "plugins", list);
}

static void reload_done(void *arg, bool ok, uint64_t gen_id, const struct ewtp_errors *why)
{
    struct admin_conn *c = arg;
    if (ok) {
        send_reply(c, json_pack("{s:b, s:I}", "ok", 1, "generation", (json_int_t)gen_id));
        return;
    }
    json_t *errors = json_array();
    for (size_t i = 0; i < ewtp_errors_count(why); i++)
        json_array_append_new(errors, json_string(ewtp_errors_at(why, i)->message));
    send_reply(
        c, json_pack("{s:b, s:s, s:I, s:o}", "ok", 0, "error",
                     ewtp_errors_count(why) ? ewtp_errors_at(why, 0)->message : "reload refused",
                     "generation", (json_int_t)gen_id, "errors", errors));
}

static void handle(struct admin_conn *c)
{
    struct ewtpd *d = c->admin->d;
    const char *cmd = json_string_value(json_object_get(c->request, "cmd"));
    if (cmd == NULL) {
        send_reply(c, error_reply("a request is {\"cmd\": ...}"));
    } else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "messages") == 0 ||
               strcmp(cmd, "replay") == 0 || strcmp(cmd, "retry-now") == 0 ||
               strcmp(cmd, "chain-set") == 0) {
        start_store_job(c);
    } else if (strcmp(cmd, "plugins") == 0) {
        send_reply(c, plugins_reply(d));
    } else if (strcmp(cmd, "reload") == 0) {
        bool wait = json_is_true(json_object_get(c->request, "wait"));
        c->busy = wait;
        int rc = ewtpd_reload(d, wait ? reload_done : NULL, wait ? c : NULL);
        if (rc != 0)
            send_reply(c, error_reply("cannot reload now: %s", ewtp_strerror(rc)));
        else if (!wait)
            send_reply(c, json_pack("{s:b, s:s}", "ok", 1, "reload", "started"));
    } else {
        send_reply(c, error_reply("unknown command \"%s\"", cmd));
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct admin_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    /* One request per connection: input after the first line (while its job or reload is
     * pending, or its answer is being written) is dropped unread, never parsed into the
     * request the worker is reading. Reading stays enabled to notice the client leaving. */
    if (c->request != NULL || c->busy || c->replying) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    size_t len = 0;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
    if (line == NULL) {
        if (evbuffer_get_length(in) > ADMIN_LINE_MAX)
            send_reply(c, error_reply("request too long"));
        return;
    }
    json_error_t err;
    c->request = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
    free(line);
    if (c->request == NULL)
        c->request = json_null(); /* marks the one request as taken */
    if (!json_is_object(c->request))
        send_reply(c, error_reply("not a JSON object: %s", err.text));
    else
        handle(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct admin_conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_drop(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    struct ewtp_admin *a = arg;
    struct admin_conn *c = calloc(1, sizeof(*c));
    struct event_base *base = a->d->base;
    if (c == NULL || (c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->admin = a;
    c->next = a->conns;
    if (a->conns)
        a->conns->prevp = &c->next;
    c->prevp = &a->conns;
    a->conns = c;
    bufferevent_setcb(c->bev, on_read, on_written, on_event, c);
    struct timeval idle = {30, 0};
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_enable(c->bev, EV_READ);
}

int ewtp_admin_start(struct ewtpd *d, const char *path, struct ewtp_admin **out,
                     struct ewtp_errors *why)
{
    *out = NULL;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        ewtp_errors_add(why, "", "admin", "admin socket path too long: %s", path);
        return -EWTP_ERANGE;
    }
    strcpy(sun.sun_path, path);
    unlink(path); /* a stale socket of a previous run */
    struct ewtp_admin *a = calloc(1, sizeof(*a));
    if (a == NULL || (a->path = strdup(path)) == NULL) {
        free(a);
        return -EWTP_ENOMEM;
    }
    a->d = d;
    /* Created 0660 from the start: no window in which others could connect. */
    mode_t old = umask(0117);
    a->listener = evconnlistener_new_bind(d->base, on_accept, a,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                          (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (a->listener == NULL) {
        ewtp_errors_add(why, "", "admin", "cannot bind the admin socket %s: %s", path,
                        strerror(errno));
        free(a->path);
        free(a);
        return -EWTP_EIO;
    }
    struct group *g = getgrnam("ewtpd");
    if (g != NULL && chown(path, (uid_t)-1, g->gr_gid) != 0)
        ewtpd_log(LOG_WARNING, "admin socket %s: cannot give it to group ewtpd: %s", path,
                  strerror(errno));
    *out = a;
    return 0;
}

void ewtp_admin_free(struct ewtp_admin *a)
{
    if (a == NULL)
        return;
    evconnlistener_free(a->listener);
    unlink(a->path);
    while (a->conns)
        conn_drop(a->conns);
    free(a->path);
    free(a);
}
