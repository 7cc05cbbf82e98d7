/* libewtp-sim's kit: the request plumbing every authority simulator needs (error lists, the
 * bearer check, body parsing) and receipts delivered by callback or spool file, now or
 * later. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ewtp/json.h>
#include <ewtp/xml.h>

#include "sim_internal.h"

void ewtp_sim_reply_errors(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp,
                           int status, const char *code, const struct ewtp_errors *errs)
{
    size_t n = ewtp_errors_count(errs);
    if (n == 0) {
        ewtp_sim_reply_error(req, resp, status, code, "invalid", NULL);
        return;
    }
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_key(w, "errors");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        const struct ewtp_error *e = ewtp_errors_at(errs, i);
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "code", code);
        ewtp_jsonw_kv_string(w, "message", e->message);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    const char *out = NULL;
    size_t len = 0;
    if (w == NULL || ewtp_jsonw_finish(w, &out, &len) != 0)
        ewtp_sim_reply_error(req, resp, 500, "SIM-500", "out of memory", NULL);
    else
        ewtp_sim_reply(resp, status, "application/json", out, len);
}

/* ---- Bearer tokens ----------------------------------------------------------------------- */

const char *ewtp_sim_bearer(const struct ewtp_sim_request *req)
{
    const char *auth = ewtp_sim_request_header(req, "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0 || auth[7] == '\0')
        return NULL;
    return auth + 7;
}

void ewtp_sim_reply_401(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp,
                        const char *realm, bool invalid_token, const char *code,
                        const char *message)
{
    ewtp_sim_reply_error(req, resp, 401, code, message, NULL);
    const char *h = NULL;
    if (realm)
        h = ewtp_arena_printf(req->arena, "Bearer realm=\"%s\"%s", realm,
                              invalid_token ? ", error=\"invalid_token\"" : "");
    else if (invalid_token)
        h = "Bearer error=\"invalid_token\"";
    ewtp_sim_reply_header(resp, "WWW-Authenticate", h ? h : "Bearer");
}

const char *ewtp_sim_require_bearer(const struct ewtp_sim_request *req,
                                    struct ewtp_sim_response *resp, const char *expected,
                                    const char *realm, const char *code)
{
    const char *token = ewtp_sim_bearer(req);
    if (token == NULL) {
        ewtp_sim_reply_401(req, resp, realm, false, code, "a bearer token is required");
        return NULL;
    }
    if (expected && strcmp(token, expected) != 0) {
        ewtp_sim_reply_401(req, resp, realm, true, code, "the bearer token is not valid");
        return NULL;
    }
    return token;
}

/* ---- Bodies ------------------------------------------------------------------------------ */

const struct ewtp_json *ewtp_sim_body_json(const struct ewtp_sim_request *req,
                                           struct ewtp_sim_response *resp, const char *code)
{
    const struct ewtp_json *j = ewtp_json_parse(req->arena, req->body, req->body_len, NULL);
    if (ewtp_json_type(j) == EWTP_JSON_OBJECT)
        return j;
    if (code)
        ewtp_sim_reply_error(req, resp, 400, code, "the body is not a JSON object", NULL);
    return NULL;
}

struct ewtp_xml_doc *ewtp_sim_body_xml(const struct ewtp_sim_request *req,
                                       struct ewtp_sim_response *resp, const struct ewtp_xsd *xsd,
                                       const char *code, struct ewtp_errors *errs)
{
    struct ewtp_errors *own = errs ? NULL : ewtp_errors_new();
    struct ewtp_errors *e = errs ? errs : own;
    struct ewtp_xml_doc *doc = NULL;
    if (ewtp_xml_parse(req->body, req->body_len, e, &doc) != 0) {
        if (ewtp_errors_count(e) == 0)
            ewtp_errors_add(e, "", "format", "the body is not well-formed XML");
    } else if (xsd && ewtp_xsd_validate_doc(xsd, doc, e) != 0) {
        ewtp_xml_free(doc);
        doc = NULL;
    }
    if (doc == NULL && code)
        ewtp_sim_reply_errors(req, resp, 400, code, e);
    ewtp_errors_free(own);
    return doc;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

const char *ewtp_sim_form_field(const struct ewtp_sim_request *req, const char *name)
{
    size_t nlen = strlen(name);
    for (const char *p = req->body; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = len - nlen - 1, k = 0;
            char *out = ewtp_arena_alloc(req->arena, vlen + 1);
            for (size_t i = 0; out && i < vlen; i++) {
                int hi = i + 2 < vlen && v[i] == '%' ? hex_digit(v[i + 1]) : -1;
                int lo = hi >= 0 ? hex_digit(v[i + 2]) : -1;
                if (lo >= 0) {
                    out[k++] = (char)(hi * 16 + lo);
                    i += 2;
                } else {
                    out[k++] = v[i] == '+' ? ' ' : v[i];
                }
            }
            if (out)
                out[k] = '\0';
            return out;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

/* ---- Receipts ---------------------------------------------------------------------------- */

int ewtp_sim_deliver(struct ewtp_sim *sim, const struct ewtp_sim_deliver_to *to, const char *name,
                     const char *content_type, const void *body, size_t len)
{
    int rc = 0;
    if (to == NULL || body == NULL)
        return -EWTP_EINVAL;
    if (to->callback_url)
        rc = ewtp_sim_post(sim, to->callback_url, to->callback_token, content_type, body, len);
    if (to->spool_in) {
        int r = ewtp_sim_spool_write(sim, to->spool_in, name, body, len);
        rc = rc ? rc : r;
    }
    return rc;
}

/* A scripted receipt waiting for its timer: every string copied. */
struct later {
    char *url, *token, *spool_in, *name, *content_type, *body;
    size_t len;
};

static void later_free(void *arg)
{
    struct later *l = arg;
    if (l == NULL)
        return;
    free(l->url);
    free(l->token);
    free(l->spool_in);
    free(l->name);
    free(l->content_type);
    free(l->body);
    free(l);
}

static void later_fire(struct ewtp_sim *sim, void *arg)
{
    struct later *l = arg;
    struct ewtp_sim_deliver_to to = {l->url, l->token, l->spool_in};
    ewtp_sim_deliver(sim, &to, l->name, l->content_type, l->body, l->len);
    later_free(l);
}

static bool dup_opt(char **out, const char *s)
{
    *out = s ? strdup(s) : NULL;
    return s == NULL || *out != NULL;
}

struct ewtp_sim_timer *ewtp_sim_deliver_later(struct ewtp_sim *sim, int64_t delay_ms,
                                              const struct ewtp_sim_deliver_to *to,
                                              const char *name, const char *content_type,
                                              const void *body, size_t len)
{
    if (to == NULL || body == NULL)
        return NULL;
    struct later *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->body = malloc(len + 1);
    if (l->body)
        memcpy(l->body, body, len);
    l->len = len;
    struct ewtp_sim_timer *t = NULL;
    if (l->body && dup_opt(&l->url, to->callback_url) && dup_opt(&l->token, to->callback_token) &&
        dup_opt(&l->spool_in, to->spool_in) && dup_opt(&l->name, name) &&
        dup_opt(&l->content_type, content_type))
        t = ewtp_sim_timer_add(sim, delay_ms, later_fire, l);
    if (t == NULL) {
        later_free(l);
        return NULL;
    }
    t->free_arg = later_free;
    return t;
}
