/* libewtp-sim core: module loading, the HTTP(S) listener, request dispatch, the /_sim/
 * endpoints and fault injection. Everything runs on one libevent loop thread. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <ewtp/json.h>
#include <ewtp/plugin.h>

#include "sim_internal.h"

#define MAX_BODY (16 * 1024 * 1024)

struct sim_pending {
    struct sim_pending *prev, *next;
    struct ewtp_sim *sim;
    struct evhttp_request *ereq;
    struct ewtp_arena *arena;
    struct ewtp_sim_response resp;
    struct ewtp_sim_timer *timer;
};

/* Appends a printf-formatted sentence to a malloc'd "why" text (one per line). */
static void why_add(char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why_add(char **why, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    size_t old = *why ? strlen(*why) : 0;
    char *s = realloc(*why, old + strlen(line) + 2);
    if (s == NULL)
        return;
    if (old)
        s[old++] = '\n';
    strcpy(s + old, line);
    *why = s;
}

static void why_errors(char **why, const struct ewtp_errors *e)
{
    for (size_t i = 0; i < ewtp_errors_count(e); i++) {
        const struct ewtp_error *x = ewtp_errors_at(e, i);
        why_add(why, "%s%s%s", x->pointer[0] ? x->pointer : "", x->pointer[0] ? ": " : "",
                x->message);
    }
}

/* ---- Faults ------------------------------------------------------------------------------ */

static void faults_default(struct sim_faults *f)
{
    *f = (struct sim_faults){.error_status = 503, .seed = 1, .force_count = 1, .retry_after = 1};
}

/* splitmix64: deterministic for a seed, so a test's fault pattern repeats run after run. */
static uint64_t prng_next(struct ewtp_sim *sim)
{
    uint64_t z = (sim->prng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct fault_key {
    const char *name;
    size_t offset;
    int64_t min, max, def;
};

static const struct fault_key fault_keys[] = {
    {"latency_ms", offsetof(struct sim_faults, latency_ms), 0, 600000, 0},
    {"error_rate", offsetof(struct sim_faults, error_rate), 0, 100, 0},
    {"error_status", offsetof(struct sim_faults, error_status), 100, 599, 503},
    {"seed", offsetof(struct sim_faults, seed), 0, INT64_MAX, 1},
    {"force_status", offsetof(struct sim_faults, force_status), 0, 599, 0},
    {"force_count", offsetof(struct sim_faults, force_count), 1, 1000000, 1},
    {"retry_after", offsetof(struct sim_faults, retry_after), 0, 86400, 1},
    {"rate_limit", offsetof(struct sim_faults, rate_limit), 0, 1000000, 0},
};

/* -EWTP_ENOTFOUND when key is not a fault setting; value NULL restores the default. */
static int fault_set(struct ewtp_sim *sim, const char *key, const char *value,
                     struct ewtp_errors *why)
{
    for (size_t i = 0; i < sizeof(fault_keys) / sizeof(fault_keys[0]); i++) {
        const struct fault_key *k = &fault_keys[i];
        if (strcmp(k->name, key) != 0)
            continue;
        int64_t v = k->def;
        if (value && ewtp_sim_parse_int(value, k->min, k->max, &v) != 0) {
            ewtp_errors_add(why, key, "range", "%s must be an integer from %lld to %lld", key,
                            (long long)k->min, (long long)k->max);
            return -EWTP_EINVAL;
        }
        if (strcmp(key, "force_status") == 0 && v != 0 && v < 100) {
            ewtp_errors_add(why, key, "range", "force_status must be 0 (off) or an HTTP status");
            return -EWTP_EINVAL;
        }
        *(int64_t *)((char *)&sim->faults + k->offset) = v;
        if (strcmp(key, "seed") == 0)
            sim->prng = (uint64_t)v;
        if (strcmp(key, "force_status") == 0)
            sim->faults.force_left = v ? sim->faults.force_count : 0;
        if (strcmp(key, "force_count") == 0 && sim->faults.force_status)
            sim->faults.force_left = v;
        return 0;
    }
    return -EWTP_ENOTFOUND;
}

static const char *faults_json(struct ewtp_sim *sim, struct ewtp_arena *a)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    ewtp_jsonw_object_begin(w);
    for (size_t i = 0; i < sizeof(fault_keys) / sizeof(fault_keys[0]); i++)
        ewtp_jsonw_kv_int(w, fault_keys[i].name,
                          *(int64_t *)((char *)&sim->faults + fault_keys[i].offset));
    ewtp_jsonw_kv_int(w, "force_left", sim->faults.force_left);
    ewtp_jsonw_object_end(w);
    const char *out = NULL;
    size_t len = 0;
    return w && ewtp_jsonw_finish(w, &out, &len) == 0 ? out : NULL;
}

/* Decides whether this request meets an injected fault; fills resp when it does. */
static bool inject(struct ewtp_sim *sim, const struct ewtp_sim_request *req,
                   struct ewtp_sim_response *resp)
{
    struct sim_faults *f = &sim->faults;
    int status = 0;
    const char *why = NULL;
    if (f->force_status && f->force_left > 0) {
        status = (int)f->force_status;
        why = "forced by the simulator (force_status)";
        if (--f->force_left == 0)
            f->force_status = 0;
    }
    if (!status && f->rate_limit > 0) {
        int64_t second = ewtp_sim_now_ms(sim) / 1000;
        if (second != sim->rate_second) {
            sim->rate_second = second;
            sim->rate_count = 0;
        }
        if (++sim->rate_count > f->rate_limit) {
            status = 429;
            why = "rate limit exceeded (rate_limit)";
        }
    }
    if (!status && f->error_rate > 0 && (int64_t)(prng_next(sim) % 100) < f->error_rate) {
        status = (int)f->error_status;
        why = "injected error (error_rate)";
    }
    if (!status)
        return false;
    sim->n_faults++;
    ewtp_sim_reply_error(req, resp, status, ewtp_arena_printf(req->arena, "SIM-%d", status), why,
                         NULL);
    if ((status == 429 || status == 503) && f->retry_after > 0)
        ewtp_sim_reply_header(resp, "Retry-After",
                              ewtp_arena_printf(req->arena, "%lld", (long long)f->retry_after));
    return true;
}

/* ---- /_sim/ ------------------------------------------------------------------------------ */

static void errors_reply(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp,
                         const struct ewtp_errors *e)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_key(w, "errors");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; i < ewtp_errors_count(e); i++) {
        const struct ewtp_error *x = ewtp_errors_at(e, i);
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "code", x->code);
        ewtp_jsonw_kv_string(w, "message", x->message);
        ewtp_jsonw_kv_string(w, "path", x->pointer);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    const char *out = NULL;
    size_t len = 0;
    if (w && ewtp_jsonw_finish(w, &out, &len) == 0)
        ewtp_sim_reply(resp, 400, "application/json", out, len);
    else
        ewtp_sim_reply_error(req, resp, 500, "SIM-500", "out of memory", NULL);
}

/* The text form of a control value: strings as they are, integers as written, booleans as
 * "true"/"false"; NULL for null. Anything else sets *bad. */
static const char *control_value(const struct ewtp_json *v, bool *bad)
{
    *bad = false;
    switch (ewtp_json_type(v)) {
    case EWTP_JSON_STRING:
        return ewtp_json_string(v);
    case EWTP_JSON_INTEGER:
        return ewtp_json_number_text(v);
    case EWTP_JSON_TRUE:
        return "true";
    case EWTP_JSON_FALSE:
        return "false";
    case EWTP_JSON_NULL:
        return NULL;
    default:
        *bad = true;
        return NULL;
    }
}

static void control(struct ewtp_sim *sim, const struct ewtp_sim_request *req,
                    struct ewtp_sim_response *resp)
{
    struct ewtp_errors *errs = ewtp_errors_new();
    if (errs == NULL) {
        ewtp_sim_reply_error(req, resp, 500, "SIM-500", "out of memory", NULL);
        return;
    }
    const struct ewtp_json *doc = ewtp_json_parse(req->arena, req->body, req->body_len, errs);
    if (doc && ewtp_json_type(doc) != EWTP_JSON_OBJECT)
        ewtp_errors_add(errs, "", "type", "the control document must be a JSON object");
    const char *key;
    const struct ewtp_json *jv;
    for (size_t i = 0; ewtp_errors_count(errs) == 0 && ewtp_json_member(doc, i, &key, &jv); i++) {
        bool bad = false;
        const char *value = control_value(jv, &bad);
        if (bad) {
            ewtp_errors_add(errs, key, "type", "%s must be a string, an integer or a boolean", key);
            break;
        }
        if (strcmp(key, "reset_received") == 0) {
            if (value && strcmp(value, "true") == 0) {
                sim_record_reset(sim);
                sim->n_faults = 0;
                sim->cb_sent = sim->cb_delivered = sim->cb_failed = 0;
            }
            continue;
        }
        int rc = fault_set(sim, key, value, errs);
        if (rc == -EWTP_ENOTFOUND) {
            rc = sim->mod->set ? sim->mod->set(sim->state, key, value, errs) : -EWTP_ENOTFOUND;
            if (rc == -EWTP_ENOTFOUND)
                ewtp_errors_add(errs, key, "unknown_member", "no setting named %s", key);
            else if (rc != 0 && ewtp_errors_count(errs) == 0)
                ewtp_errors_add(errs, key, "format", "bad value for %s", key);
        }
    }
    if (ewtp_errors_count(errs) > 0)
        errors_reply(req, resp, errs);
    else
        ewtp_sim_reply_json(resp, 200, faults_json(sim, req->arena));
    ewtp_errors_free(errs);
}

static void sim_endpoint(struct ewtp_sim *sim, const struct ewtp_sim_request *req,
                         struct ewtp_sim_response *resp)
{
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
    if (strcmp(req->path, "/_sim/received") == 0 && get) {
        ewtp_sim_reply_json(resp, 200, sim_record_json(sim, req->arena));
    } else if (strcmp(req->path, "/_sim/control") == 0 && get) {
        ewtp_sim_reply_json(resp, 200, faults_json(sim, req->arena));
    } else if (strcmp(req->path, "/_sim/control") == 0 && post) {
        control(sim, req, resp);
    } else if (strcmp(req->path, "/_sim/health") == 0 && get) {
        struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "status", "ok");
        ewtp_jsonw_kv_string(w, "module", sim->mod->name);
        ewtp_jsonw_kv_string(w, "country", sim->mod->country);
        ewtp_jsonw_object_end(w);
        const char *out = NULL;
        size_t len = 0;
        if (w && ewtp_jsonw_finish(w, &out, &len) == 0)
            ewtp_sim_reply_json(resp, 200, out);
    } else {
        ewtp_sim_reply_error(req, resp, 404, "SIM-404", "no such simulator endpoint", NULL);
    }
    if (resp->status == 200 && resp->body == NULL)
        ewtp_sim_reply_error(req, resp, 500, "SIM-500", "out of memory", NULL);
}

/* ---- HTTP -------------------------------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "OTHER";
    }
}

static void send_reply(struct evhttp_request *ereq, const struct ewtp_sim_response *resp)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(ereq);
    if (resp->body_len > 0 || resp->content_type)
        evhttp_add_header(h, "Content-Type",
                          resp->content_type ? resp->content_type : "application/json");
    for (size_t i = 0; i < resp->n_headers; i++)
        evhttp_add_header(h, resp->headers[i].name, resp->headers[i].value);
    struct evbuffer *out = evhttp_request_get_output_buffer(ereq);
    if (resp->body_len)
        evbuffer_add(out, resp->body, resp->body_len);
    evhttp_send_reply(ereq, resp->status, ewtp_http_reason(resp->status), NULL);
}

static void pending_unlink(struct sim_pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->sim->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static void pending_send(struct ewtp_sim *sim, void *arg)
{
    (void)sim;
    struct sim_pending *p = arg;
    p->timer = NULL;
    pending_unlink(p);
    send_reply(p->ereq, &p->resp);
    ewtp_arena_free(p->arena);
    free(p);
}

static const char *client_subject(struct ewtp_sim *sim, struct evhttp_connection *conn,
                                  struct ewtp_arena *a)
{
    if (sim->tls == NULL || conn == NULL)
        return NULL;
    SSL *ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(conn));
    X509 *cert = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
    if (cert == NULL)
        return NULL;
    char buf[512];
    X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
    X509_free(cert);
    return ewtp_arena_strdup(a, buf);
}

static bool fill_request(struct ewtp_sim *sim, struct evhttp_request *ereq,
                         struct ewtp_sim_request *req)
{
    struct ewtp_arena *a = req->arena;
    req->method = method_name(evhttp_request_get_command(ereq));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ereq);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    req->path = path && *path ? path : "/";
    req->query = uri ? evhttp_uri_get_query(uri) : NULL;
    struct evkeyvalq *in = evhttp_request_get_input_headers(ereq);
    size_t n = 0;
    struct evkeyval *kv;
    for (kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        n++;
    struct ewtp_sim_header *h = ewtp_arena_alloc(a, (n ? n : 1) * sizeof(*h));
    if (h == NULL)
        return false;
    n = 0;
    for (kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        h[n++] = (struct ewtp_sim_header){.name = kv->key, .value = kv->value};
    req->headers = h;
    req->n_headers = n;
    struct evbuffer *body = evhttp_request_get_input_buffer(ereq);
    size_t len = evbuffer_get_length(body);
    char *copy = ewtp_arena_alloc(a, len + 1);
    if (copy == NULL)
        return false;
    if (len)
        evbuffer_copyout(body, copy, len);
    req->body = copy;
    req->body_len = len;
    struct evhttp_connection *conn = evhttp_request_get_connection(ereq);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (conn)
        evhttp_connection_get_peer(conn, &addr, &port);
    req->peer = ewtp_arena_printf(a, "%s:%u", addr ? addr : "?", (unsigned)port);
    req->client_subject = client_subject(sim, conn, a);
    return true;
}

static void on_request(struct evhttp_request *ereq, void *arg)
{
    struct ewtp_sim *sim = arg;
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_sim_request req = {.arena = a};
    struct ewtp_sim_response resp;
    memset(&resp, 0, sizeof(resp));
    if (a == NULL || !fill_request(sim, ereq, &req)) {
        ewtp_arena_free(a);
        evhttp_send_error(ereq, 500, "out of memory");
        return;
    }
    bool internal = strncmp(req.path, "/_sim/", 6) == 0;
    if (internal) {
        sim_endpoint(sim, &req, &resp);
    } else if (!inject(sim, &req, &resp)) {
        int rc = sim->mod->handle(sim->state, &req, &resp);
        if (rc != 0 || resp.status < 100 || resp.status > 599) {
            ewtp_sim_log(sim, EWTP_LOG_ERR, "%s %s: the module failed (%s, status %d)", req.method,
                         req.path, ewtp_strerror(rc), resp.status);
            memset(&resp, 0, sizeof(resp));
            ewtp_sim_reply_error(&req, &resp, 500, "SIM-500", "the simulator module failed", NULL);
        }
    }
    if (!internal && sim->faults.latency_ms > 0) {
        struct sim_pending *p = calloc(1, sizeof(*p));
        if (p) {
            p->sim = sim;
            p->ereq = ereq;
            p->arena = a;
            p->resp = resp;
            p->timer = ewtp_sim_timer_add(sim, sim->faults.latency_ms, pending_send, p);
        }
        if (p && p->timer) {
            p->next = sim->pending;
            if (sim->pending)
                sim->pending->prev = p;
            sim->pending = p;
            return;
        }
        free(p);
    }
    send_reply(ereq, &resp);
    ewtp_arena_free(a);
}

/* ---- Set-up and teardown ----------------------------------------------------------------- */

static int load_module(struct ewtp_sim *sim, const char *path, char **why)
{
    sim->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (sim->dl == NULL) {
        why_add(why, "cannot load simulator module %s: %s", path, dlerror());
        return -EWTP_ENOTFOUND;
    }
    const struct ewtp_sim_module *m = dlsym(sim->dl, EWTP_SIM_SYMBOL);
    if (m == NULL) {
        why_add(why,
                "%s is not an ewtp simulator module: it exports no %s (declare one with "
                "EWTP_SIM_MODULE())",
                path, EWTP_SIM_SYMBOL);
        return -EWTP_EINVAL;
    }
    if (m->abi_major != EWTP_SIM_ABI_MAJOR || m->abi_minor > EWTP_SIM_ABI_MINOR) {
        why_add(why,
                "%s was built for simulator ABI %u.%u but this ewtp-sim speaks %d.%d: rebuild "
                "the module against this SDK",
                path, m->abi_major, m->abi_minor, EWTP_SIM_ABI_MAJOR, EWTP_SIM_ABI_MINOR);
        return -EWTP_EINVAL;
    }
    if (m->size < EWTP_SIM_MODULE_MIN_SIZE || m->name == NULL || m->country == NULL ||
        m->create == NULL || m->handle == NULL || m->destroy == NULL) {
        why_add(why,
                "%s has an incomplete descriptor (size %zu, name, country, create, handle and "
                "destroy are required): use EWTP_SIM_MODULE()",
                path, m->size);
        return -EWTP_EINVAL;
    }
    sim->mod = m;
    return 0;
}

/* Splits the --set values: fault settings here, everything else to the module. */
static int apply_settings(struct ewtp_sim *sim, const struct ewtp_settings *in,
                          struct ewtp_settings *mod, char **why)
{
    struct ewtp_errors *errs = ewtp_errors_new();
    if (errs == NULL)
        return -EWTP_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < ewtp_settings_count(in); i++) {
        const char *name = NULL;
        const struct ewtp_settings *v = ewtp_settings_index(in, i, &name);
        const char *value = ewtp_settings_value_string(v);
        if (name == NULL || value == NULL) {
            why_add(why, "setting %s must be a plain value", name ? name : "?");
            rc = -EWTP_EINVAL;
            continue;
        }
        int r = fault_set(sim, name, value, errs);
        if (r == -EWTP_ENOTFOUND)
            r = ewtp_settings_set_string(mod, name, value);
        if (r != 0)
            rc = r;
    }
    why_errors(why, errs);
    ewtp_errors_free(errs);
    return rc;
}

static int setup_tls(struct ewtp_sim *sim, const struct ewtp_sim_options *opt, char **why)
{
    sim->tls = SSL_CTX_new(TLS_server_method());
    if (sim->tls == NULL)
        return -EWTP_ENOMEM;
    SSL_CTX_set_min_proto_version(sim->tls, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(sim->tls, opt->tls_cert) != 1) {
        why_add(why, "cannot read TLS certificate %s", opt->tls_cert);
        return -EWTP_EIO;
    }
    if (SSL_CTX_use_PrivateKey_file(sim->tls, opt->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(sim->tls) != 1) {
        why_add(why, "cannot use TLS key %s with certificate %s", opt->tls_key, opt->tls_cert);
        return -EWTP_EIO;
    }
    if (opt->client_ca) {
        if (SSL_CTX_load_verify_locations(sim->tls, opt->client_ca, NULL) != 1) {
            why_add(why, "cannot read client CA %s", opt->client_ca);
            return -EWTP_EIO;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(opt->client_ca);
        if (names)
            SSL_CTX_set_client_CA_list(sim->tls, names);
        SSL_CTX_set_verify(sim->tls, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    ERR_clear_error();
    return 0;
}

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new(arg);
    if (ssl == NULL)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        SSL_free(ssl);
    return bev;
}

static int bind_listener(struct ewtp_sim *sim, const char *listen, char **why)
{
    char host[256];
    const char *colon = strrchr(listen ? listen : "", ':');
    const char *h = listen, *hend = colon;
    if (listen && listen[0] == '[') {
        h = listen + 1;
        hend = strchr(listen, ']');
        if (hend == NULL || hend + 1 != colon)
            hend = NULL;
    }
    int64_t port = 0;
    if (colon == NULL || hend == NULL || (size_t)(hend - h) >= sizeof(host) || hend == h ||
        ewtp_sim_parse_int(colon + 1, 0, 65535, &port) != 0) {
        why_add(why, "--listen must be HOST:PORT (e.g. 127.0.0.1:0), not \"%s\"",
                listen ? listen : "");
        return -EWTP_EINVAL;
    }
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    sim->bound = evhttp_bind_socket_with_handle(sim->http, host, (ev_uint16_t)port);
    if (sim->bound == NULL) {
        why_add(why, "cannot listen on %s: %s", listen, strerror(errno));
        return -EWTP_EIO;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(sim->bound), (struct sockaddr *)&ss, &sl) != 0)
        return -EWTP_EIO;
    sim->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

int ewtp_sim_new(const char *module_path, const struct ewtp_sim_options *opt, struct ewtp_sim **out,
                 char **why)
{
    *out = NULL;
    *why = NULL;
    struct ewtp_sim *sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        return -EWTP_ENOMEM;
    sim_timers_init(sim);
    faults_default(&sim->faults);
    sim->prng = (uint64_t)sim->faults.seed;
    struct ewtp_settings *mod_settings = ewtp_settings_new();
    int rc = mod_settings ? 0 : -EWTP_ENOMEM;
    /* The loop exists before the module's create, which may start timers (a spool
     * watcher's first scan). */
    if (rc == 0 && (sim->base = event_base_new()) == NULL)
        rc = -EWTP_ENOMEM;
    if (rc == 0)
        rc = load_module(sim, module_path, why);
    if (rc == 0)
        rc = apply_settings(sim, opt->settings, mod_settings, why);
    if (rc == 0 && (sim->http = evhttp_new(sim->base)) == NULL)
        rc = -EWTP_ENOMEM;
    if (rc == 0 && opt->tls_cert) {
        if (opt->tls_key == NULL) {
            why_add(why, "--tls-cert needs --tls-key");
            rc = -EWTP_EINVAL;
        } else {
            rc = setup_tls(sim, opt, why);
        }
    } else if (rc == 0 && opt->client_ca) {
        why_add(why, "--client-ca needs --tls-cert and --tls-key");
        rc = -EWTP_EINVAL;
    }
    if (rc == 0) {
        evhttp_set_gencb(sim->http, on_request, sim);
        evhttp_set_max_body_size(sim->http, MAX_BODY);
        evhttp_set_timeout(sim->http, 60);
        evhttp_set_allowed_methods(sim->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                                  EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                                  EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
        if (sim->tls)
            evhttp_set_bevcb(sim->http, tls_bev, sim->tls);
        rc = bind_listener(sim, opt->listen, why);
    }
    if (rc == 0) {
        struct ewtp_errors *errs = ewtp_errors_new();
        rc = errs ? sim->mod->create(sim, mod_settings, &sim->state, errs) : -EWTP_ENOMEM;
        if (rc != 0) {
            why_add(why, "the %s simulator module refused its settings:", sim->mod->name);
            why_errors(why, errs);
            sim->state = NULL;
        }
        ewtp_errors_free(errs);
    }
    ewtp_settings_free(mod_settings);
    if (rc != 0) {
        if (*why == NULL)
            why_add(why, "cannot start the simulator: %s", ewtp_strerror(rc));
        ewtp_sim_free(sim); /* state is NULL: destroy does not run */
        return rc;
    }
    *out = sim;
    return 0;
}

int ewtp_sim_port(const struct ewtp_sim *sim)
{
    return sim->port;
}

const struct ewtp_sim_module *ewtp_sim_descriptor(const struct ewtp_sim *sim)
{
    return sim->mod;
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ewtp_sim *sim = arg;
    event_base_loopexit(sim->base, NULL);
}

int ewtp_sim_run(struct ewtp_sim *sim, bool handle_signals)
{
    if (handle_signals && sim->sig_term == NULL) {
        sim->sig_term = evsignal_new(sim->base, SIGTERM, on_signal, sim);
        sim->sig_int = evsignal_new(sim->base, SIGINT, on_signal, sim);
        if (sim->sig_term == NULL || sim->sig_int == NULL)
            return -EWTP_ENOMEM;
        evsignal_add(sim->sig_term, NULL);
        evsignal_add(sim->sig_int, NULL);
    }
    return event_base_dispatch(sim->base) < 0 ? -EWTP_EIO : 0;
}

void ewtp_sim_stop(struct ewtp_sim *sim)
{
    event_base_loopbreak(sim->base);
}

void ewtp_sim_free(struct ewtp_sim *sim)
{
    if (sim == NULL)
        return;
    /* Late answers go out now: the requests belong to connections evhttp_free closes. */
    while (sim->pending) {
        struct sim_pending *p = sim->pending;
        ewtp_sim_timer_cancel(sim, p->timer);
        p->timer = NULL;
        pending_send(sim, p);
    }
    sim_posts_free(sim);
    if (sim->mod && sim->state)
        sim->mod->destroy(sim->state);
    sim_timers_free(sim);
    if (sim->sig_term)
        event_free(sim->sig_term);
    if (sim->sig_int)
        event_free(sim->sig_int);
    if (sim->http)
        evhttp_free(sim->http);
    if (sim->base)
        event_base_free(sim->base);
    SSL_CTX_free(sim->tls);
    SSL_CTX_free(sim->client_tls);
    sim_record_reset(sim);
    if (sim->dl)
        dlclose(sim->dl);
    free(sim);
}
