/* tokens.c — authority tokens: OAuth2 client credentials, JSON login and the plugin's own login
 * (ABI 1.3), cached per instance until shortly before they expire or the authority answers 401.
 * Part of the dispatcher (dispatcher.h); what its files share is delivery_int.h. */
#include "delivery_int.h"

/* ---- authority tokens (OAuth2 client credentials, JSON login) ------------------------------ */

#define TOKEN_MARGIN_MS 60000
#define TOKEN_DEFAULT_TTL_MS (10 * 60 * 1000)

void dsp_token_free(struct token *t)
{
    free(t->instance);
    free(t->conf_id);
    if (t->value)
        memset(t->value, 0, strlen(t->value));
    free(t->value);
    free(t);
}

static char *form_escape(const char *v)
{
    size_t n = strlen(v);
    char *o = malloc(3 * n + 1), *p = o;
    for (size_t i = 0; o && i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            *p++ = (char)c;
        else
            p += sprintf(p, "%%%02X", c);
    }
    if (o)
        *p = '\0';
    return o;
}

static void token_set(struct token *t, const char *value, int64_t life, const char *why);

static void token_answer(void *arg, struct ewtp_httpc_resp *resp)
{
    struct token *t = arg;
    struct ewtp_dispatcher *ds = t->ds;
    t->fetching = false;
    const struct ewtp_gen_instance *gi = ewtp_gen_instance(ds->d->gen, t->instance);
    json_t *o = resp && resp->status >= 200 && resp->status < 300 && resp->body
                    ? json_loadb(resp->body, resp->body_len, 0, NULL)
                    : NULL;
    const char *value = NULL;
    if (o && gi && gi->conf->auth.kind == EWTP_AUTH_JSON_LOGIN) {
        const char *ptr =
            gi->conf->auth.token_json_pointer ? gi->conf->auth.token_json_pointer : "/token";
        json_t *v = o;
        char *copy = strdup(ptr), *save = NULL;
        for (char *seg = copy ? strtok_r(copy, "/", &save) : NULL; seg && v;
             seg = strtok_r(NULL, "/", &save))
            v = json_object_get(v, seg);
        free(copy);
        value = json_string_value(v);
    } else if (o) {
        value = json_string_value(json_object_get(o, "access_token"));
    }
    json_int_t ttl = o ? json_integer_value(json_object_get(o, "expires_in")) : 0;
    /* The reason ends up in the status of every message waiting for this token: it must
     * tell a wrong secret (the authority's 4xx) from an unreachable token endpoint. */
    char *why = NULL;
    if (value == NULL) {
        if (resp == NULL || resp->status == 0)
            why = ewtp_asprintf("authentication at the authority failed: token request to "
                                "%s: %s",
                                gi && gi->conf->auth.token_url ? gi->conf->auth.token_url
                                                               : "(no token_url)",
                                resp && resp->error ? resp->error : "no answer");
        else if (resp->status < 200 || resp->status >= 300)
            why = ewtp_asprintf("authentication at the authority failed: the token "
                                "endpoint answered HTTP %d (%s; check client_id and "
                                "secret_file)",
                                resp->status,
                                resp->status == 400 || resp->status == 401 || resp->status == 403
                                    ? "credentials refused"
                                    : "token endpoint unavailable");
        else
            why = ewtp_asprintf("authentication at the authority failed: no token in the "
                                "token endpoint's answer (%s)",
                                gi && gi->conf->auth.kind == EWTP_AUTH_JSON_LOGIN
                                    ? "check token_json_pointer"
                                    : "no access_token");
    }
    int64_t life = ttl > 0 && ttl < INT64_MAX / 1000 ? (int64_t)ttl * 1000 : 0;
    token_set(t, value, life, why);
    json_decref(o);
    ewtp_httpc_resp_free(resp);
    free(why);
}

/* Keeps the token value (NULL: none, why says so) valid for life_ms (0: the default) and
 * sends, or fails, every job waiting for it. */
static void token_set(struct token *t, const char *value, int64_t life, const char *why)
{
    t->fetching = false;
    if (t->value)
        memset(t->value, 0, strlen(t->value));
    free(t->value);
    t->value = value ? ewtp_asprintf("Bearer %s", value) : NULL;
    if (life <= 0)
        life = TOKEN_DEFAULT_TTL_MS;
    t->expires_at = ewtpd_now_ms() + life;
    /* A fixed margin would make a token that lives no longer than it (some authorities
     * give 30 or 60 s) look expired on arrival, and every request would log in again. */
    t->refresh_at = t->expires_at - (life / 4 < TOKEN_MARGIN_MS ? life / 4 : TOKEN_MARGIN_MS);
    if (t->value == NULL)
        ewtpd_log(LOG_ERR, "instance %s: %s", t->instance,
                  why ? why : "authentication at the authority failed");
    struct job *w = t->waiting;
    t->waiting = NULL;
    while (w) {
        struct job *next = w->auth_next;
        w->auth_next = NULL;
        if (t->value) {
            free(w->auth_header);
            w->auth_header = strdup(t->value);
            dsp_send_next(w);
        } else {
            struct ewtp_httpc_resp *fail = calloc(1, sizeof(*fail));
            if (fail)
                fail->error = strdup(why ? why : "authentication at the authority failed");
            dsp_on_answer(w, fail);
        }
        w = next;
    }
}

static void token_fetch(struct token *t, const struct ewtp_instance_conf *ic)
{
    const struct ewtp_auth_conf *a = &ic->auth;
    char *secret = NULL;
    size_t len = 0;
    if (a->secret_file && ewtp_read_file(a->secret_file, 8192, &secret, &len) == 0)
        while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
            secret[--len] = '\0';
    char *body = NULL;
    const char *ctype;
    if (a->kind == EWTP_AUTH_OAUTH2) {
        char *id = form_escape(a->client_id ? a->client_id : "");
        char *sec = form_escape(secret ? secret : "");
        char *scope = a->scope ? form_escape(a->scope) : NULL;
        body =
            id && sec
                ? ewtp_asprintf("grant_type=client_credentials&client_id=%s&client_secret=%s%s%s",
                                id, sec, scope ? "&scope=" : "", scope ? scope : "")
                : NULL;
        free(id);
        free(sec);
        free(scope);
        ctype = "application/x-www-form-urlencoded";
    } else {
        json_t *o = json_pack("{s:s,s:s}", "user", a->client_id ? a->client_id : "", "password",
                              secret ? secret : "");
        body = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        ctype = "application/json";
    }
    if (secret)
        memset(secret, 0, len);
    free(secret);
    struct ewtp_header h[3] = {EWTP_HEADER_INIT(.name = "Content-Type", .value = ctype),
                               EWTP_HEADER_INIT(.name = "Accept", .value = "application/json"),
                               EWTP_HEADER_INIT(.name = "onbehalfof", .value = a->onbehalfof)};
    /* An intermediary's token represents one taxpayer (MyInvois [LOGIN]). */
    size_t nh = a->kind == EWTP_AUTH_OAUTH2 && a->onbehalfof ? 3 : 2;
    struct ewtp_httpc_tls tls = {ic->ca_file, NULL, NULL};
    ewtp_instance_client_pair(ic, ewtpd_now_ms(), &tls.client_cert, &tls.client_key);
    char *why = NULL;
    t->fetching = true;
    int rc = body ? ewtp_httpc_send(t->ds->tr, a->token_url ? a->token_url : "", "POST", h, nh,
                                    body, strlen(body), &tls, 30000, token_answer, t, &why)
                  : -EWTP_ENOMEM;
    if (body)
        memset(body, 0, strlen(body));
    free(body);
    if (rc != 0) {
        ewtpd_log(LOG_ERR, "instance %s: token request: %s", ic->name,
                  why ? why : ewtp_strerror(rc));
        free(why);
        token_answer(t, NULL);
    }
}

/* ---- the plugin's own login (ABI 1.3 login / login_answer) ---- */

/* True when the instance logs in through its plugin: the plugin has the hook and the
 * instance's auth is none or json_login (the plugin knows the authority's login body). */
static bool plugin_login(const struct ewtp_gen_instance *gi)
{
    const struct ewtp_plugin *p = gi->plugin;
    return PLUGIN_HAS(p, login) && PLUGIN_HAS(p, login_answer) &&
           (gi->conf->auth.kind == EWTP_AUTH_NONE || gi->conf->auth.kind == EWTP_AUTH_JSON_LOGIN);
}

static void login_call(struct job *l, struct ewtp_call *c)
{
    /* A login concerns no message: no tenant, no message, attempt 1. */
    ewtp_call_init(c, ewtp_gen_host(l->gen), l->arena, ewtpd_now_ms(), NULL,
                   l->gi ? l->gi->conf->name : NULL, NULL, EWTP_OP_SUBMIT, 0);
}

/* Worker: the plugin builds the login request (it may read secrets and sign). */
static void login_work(void *arg)
{
    struct job *l = arg;
    struct ewtp_call c;
    login_call(l, &c);
    struct ewtp_out *out = ewtp_out_new(l->arena);
    l->status =
        out ? l->gi->plugin->login(ewtp_instance_state(l->gi->inst), &c, out) : -EWTP_ENOMEM;
    if (l->status == 0) {
        l->n_reqs = ewtp_out_requests(out, &l->reqs);
        if (l->n_reqs == 0)
            l->status = -EWTP_EINVAL;
    }
}

/* Loop: the plugin reads the answer into the token. */
static void login_answer(void *arg, struct ewtp_httpc_resp *tr)
{
    struct job *l = arg;
    struct token *t = l->token;
    struct ewtp_call c;
    login_call(l, &c);
    struct ewtp_response resp =
        EWTP_RESPONSE_INIT(.status = tr ? tr->status : 0,
                           .headers =
                               tr ? dsp_header_ptrs(l->arena, tr->headers, tr->n_headers) : NULL,
                           .n_headers = tr ? tr->n_headers : 0, .body = tr ? tr->body : NULL,
                           .body_len = tr ? tr->body_len : 0,
                           .transport_error = tr ? tr->error : "out of memory");
    if (resp.headers == NULL)
        resp.n_headers = 0;
    struct ewtp_token tok = EWTP_TOKEN_INIT();
    int rc = l->gi->plugin->login_answer(ewtp_instance_state(l->gi->inst), &c, &resp, &tok);
    const char *value = rc == 0 && tok.value && tok.value[0] ? tok.value : NULL;
    char *why = NULL;
    if (value == NULL)
        why = ewtp_asprintf("authentication at the authority failed: %s",
                            rc != 0     ? ewtp_strerror(rc)
                            : tok.error ? tok.error
                                        : "the login answer carries no token");
    token_set(t, value, tok.lifetime_ms, why);
    free(why);
    ewtp_httpc_resp_free(tr);
    dsp_job_free(l);
}

/* Loop: sends the login request the plugin built. */
static void login_built(void *arg)
{
    struct job *l = arg;
    struct ewtp_dispatcher *ds = l->ds;
    if (ds->stopped) {
        dsp_job_free(l);
        return;
    }
    const struct ewtp_instance_conf *ic = l->gi->conf;
    if (l->status != 0) {
        char *why = ewtp_asprintf(
            "authentication at the authority failed: the plugin cannot build its login (%s; "
            "check the instance's login settings and secret files)",
            ewtp_strerror(l->status));
        token_set(l->token, NULL, 0, why);
        free(why);
        dsp_job_free(l);
        return;
    }
    const struct ewtp_request *r = l->reqs[0];
    char *url = ic->auth.token_url ? strdup(ic->auth.token_url)
                                   : ewtp_httpc_join(ic->endpoint ? ic->endpoint : "", r->path);
    struct ewtp_header *h = calloc(r->n_headers + 1, sizeof(*h));
    char *why = NULL;
    int rc = -EWTP_ENOMEM;
    if (url && h) {
        for (size_t i = 0; i < r->n_headers; i++)
            ewtp_sized_copy(&h[i], sizeof(*h), r->headers[i]);
        struct ewtp_httpc_tls tls = {ic->ca_file, NULL, NULL};
        ewtp_instance_client_pair(ic, ewtpd_now_ms(), &tls.client_cert, &tls.client_key);
        rc = ewtp_httpc_send(ds->tr, url, r->method, h, r->n_headers, r->body, r->body_len, &tls,
                             30000, login_answer, l, &why);
    }
    free(h);
    free(url);
    if (rc != 0) {
        ewtpd_log(LOG_ERR, "instance %s: login request: %s", ic->name,
                  why ? why : ewtp_strerror(rc));
        struct ewtp_httpc_resp *fail = calloc(1, sizeof(*fail));
        if (fail)
            fail->error = why ? why : strdup(ewtp_strerror(rc));
        else
            free(why);
        login_answer(l, fail);
        return;
    }
    free(why);
}

static void login_start(struct token *t, struct job *j)
{
    struct job *l = dsp_job_new(t->ds, J_LOGIN);
    if (l == NULL || (l->arena = ewtp_arena_new()) == NULL) {
        if (l)
            dsp_job_free(l);
        token_set(t, NULL, 0, "authentication at the authority failed: out of memory");
        return;
    }
    l->gen = j->gen;
    ewtp_gen_ref(l->gen);
    l->gi = j->gi;
    l->token = t;
    t->fetching = true;
    if (ewtp_workers_submit(t->ds->d->workers, login_work, login_built, l) != 0) {
        dsp_job_free(l);
        token_set(t, NULL, 0, "authentication at the authority failed: cannot queue the login");
    }
}

/* What a token is fetched with (not the secret itself: its file), so that a reload that
 * changes the instance's client, scope or represented taxpayer fetches a new one. */
static char *token_conf_id(const struct ewtp_auth_conf *a)
{
    return ewtp_asprintf("%d\n%s\n%s\n%s\n%s\n%s", (int)a->kind, a->token_url ? a->token_url : "",
                         a->client_id ? a->client_id : "", a->secret_file ? a->secret_file : "",
                         a->scope ? a->scope : "", a->onbehalfof ? a->onbehalfof : "");
}

/* The authority refused j's token (401): the next request of the instance logs in again
 * rather than reusing it until it expires. */
void dsp_token_refused(struct job *j)
{
    if (j->auth_header == NULL || j->gi == NULL)
        return;
    for (struct token *t = j->ds->tokens; t; t = t->next) {
        if (strcmp(t->instance, j->gi->conf->name) == 0 && t->value &&
            strcmp(t->value, j->auth_header) == 0) {
            ewtpd_log(LOG_WARNING, "instance %s: the authority refused the token; logging in again",
                      t->instance);
            t->expires_at = 0;
            t->refresh_at = 0;
        }
    }
}

/* True when j must wait for its instance's token (it is queued and sent later). */
bool dsp_need_token(struct job *j)
{
    const struct ewtp_instance_conf *ic = j->gi->conf;
    bool by_plugin = plugin_login(j->gi);
    if (ic->auth.kind != EWTP_AUTH_OAUTH2 && ic->auth.kind != EWTP_AUTH_JSON_LOGIN && !by_plugin)
        return false;
    struct ewtp_dispatcher *ds = j->ds;
    struct token *t = ds->tokens;
    while (t && strcmp(t->instance, ic->name) != 0)
        t = t->next;
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL || (t->instance = strdup(ic->name)) == NULL) {
            free(t);
            return false;
        }
        t->ds = ds;
        t->next = ds->tokens;
        ds->tokens = t;
    }
    char *id = token_conf_id(&ic->auth);
    if (id && (t->conf_id == NULL || strcmp(t->conf_id, id) != 0)) {
        free(t->conf_id);
        t->conf_id = id;
        t->expires_at = 0; /* fetched with another configuration */
        t->refresh_at = 0;
        id = NULL;
    }
    free(id);
    /* Refreshed before it expires, so that no request goes out with a dying token. */
    if (t->value && ewtpd_now_ms() < t->refresh_at) {
        if (j->auth_header == NULL || strcmp(j->auth_header, t->value) != 0) {
            free(j->auth_header);
            j->auth_header = strdup(t->value);
        }
        return false;
    }
    j->auth_next = t->waiting;
    t->waiting = j;
    if (!t->fetching) {
        if (by_plugin)
            login_start(t, j);
        else
            token_fetch(t, ic);
    }
    return true;
}
