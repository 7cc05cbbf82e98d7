/* libewtp-sim helpers: answers, routing, setting values, the received-id recording and
 * logging. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include <ewtp/json.h>

#include "sim_internal.h"

const char *ewtp_sim_request_header(const struct ewtp_sim_request *r, const char *name)
{
    for (size_t i = 0; r && i < r->n_headers; i++) {
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    }
    return NULL;
}

void ewtp_sim_reply(struct ewtp_sim_response *resp, int status, const char *content_type,
                    const void *body, size_t len)
{
    resp->status = status;
    resp->content_type = content_type;
    resp->body = body;
    resp->body_len = len;
}

void ewtp_sim_reply_json(struct ewtp_sim_response *resp, int status, const char *json)
{
    ewtp_sim_reply(resp, status, "application/json", json, json ? strlen(json) : 0);
}

void ewtp_sim_reply_error(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp,
                          int status, const char *code, const char *message, const char *path)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_key(w, "errors");
    ewtp_jsonw_array_begin(w);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "code", code);
    ewtp_jsonw_kv_string(w, "message", message);
    ewtp_jsonw_kv_string_opt(w, "path", path);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    const char *out = NULL;
    size_t len = 0;
    if (w == NULL || ewtp_jsonw_finish(w, &out, &len) != 0) {
        out = "{\"errors\":[{\"code\":\"SIM-500\",\"message\":\"out of memory\"}]}";
        len = strlen(out);
    }
    ewtp_sim_reply(resp, status, "application/json", out, len);
}

int ewtp_sim_reply_header(struct ewtp_sim_response *resp, const char *name, const char *value)
{
    if (resp->n_headers >= EWTP_SIM_MAX_HEADERS)
        return -EWTP_ERANGE;
    resp->headers[resp->n_headers].name = name;
    resp->headers[resp->n_headers].value = value;
    resp->n_headers++;
    return 0;
}

bool ewtp_sim_route(const char *path, const char *pattern, struct ewtp_arena *a,
                    const char **params, size_t max)
{
    size_t n = 0;
    const char *p = path, *q = pattern;
    while (*p && *q) {
        if (*p != '/' || *q != '/')
            return false;
        p++;
        q++;
        size_t lp = strcspn(p, "/"), lq = strcspn(q, "/");
        if (lq == 1 && *q == '*') {
            if (lp == 0)
                return false;
            if (n < max && params)
                params[n] = ewtp_arena_strndup(a, p, lp);
            n++;
        } else if (lp != lq || strncmp(p, q, lp) != 0) {
            return false;
        }
        p += lp;
        q += lq;
    }
    return *p == '\0' && *q == '\0';
}

int ewtp_sim_parse_int(const char *value, int64_t min, int64_t max, int64_t *out)
{
    if (value == NULL || !((*value >= '0' && *value <= '9') || *value == '-'))
        return -EWTP_EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
        return -EWTP_EINVAL;
    *out = v;
    return 0;
}

int64_t ewtp_sim_now_ms(const struct ewtp_sim *sim)
{
    (void)sim;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void ewtp_sim_log(struct ewtp_sim *sim, enum ewtp_log_level level, const char *fmt, ...)
{
    const char *lv = level <= EWTP_LOG_ERR       ? "error"
                     : level == EWTP_LOG_WARNING ? "warning"
                     : level == EWTP_LOG_INFO    ? "info"
                                                 : "debug";
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "ewtp-sim[%s] %s: %s\n", sim && sim->mod ? sim->mod->name : "-", lv, line);
}

/* ---- Received ids ------------------------------------------------------------------------ */

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int reindex(struct ewtp_sim *sim, size_t cap)
{
    size_t *idx = calloc(cap, sizeof(*idx));
    if (idx == NULL)
        return -EWTP_ENOMEM;
    for (size_t i = 0; i < sim->n_recs; i++) {
        size_t k = hash(sim->recs[i].id) & (cap - 1);
        while (idx[k])
            k = (k + 1) & (cap - 1);
        idx[k] = i + 1;
    }
    free(sim->index);
    sim->index = idx;
    sim->cap_index = cap;
    return 0;
}

uint64_t ewtp_sim_record(struct ewtp_sim *sim, const char *id)
{
    if (sim == NULL || id == NULL)
        return 0;
    sim->rec_total++;
    if (sim->cap_index) {
        size_t k = hash(id) & (sim->cap_index - 1);
        while (sim->index[k]) {
            struct sim_rec *r = &sim->recs[sim->index[k] - 1];
            if (strcmp(r->id, id) == 0)
                return ++r->count;
            k = (k + 1) & (sim->cap_index - 1);
        }
    }
    /* New id: keep the index at most half full. */
    if ((sim->n_recs + 1) * 2 > sim->cap_index &&
        reindex(sim, sim->cap_index ? sim->cap_index * 2 : 64) != 0)
        return 0;
    if (sim->n_recs == sim->cap_recs) {
        size_t cap = sim->cap_recs ? sim->cap_recs * 2 : 32;
        struct sim_rec *r = realloc(sim->recs, cap * sizeof(*r));
        if (r == NULL)
            return 0;
        sim->recs = r;
        sim->cap_recs = cap;
    }
    char *copy = strdup(id);
    if (copy == NULL)
        return 0;
    sim->recs[sim->n_recs] =
        (struct sim_rec){.id = copy, .count = 1, .first_ms = ewtp_sim_now_ms(sim)};
    size_t k = hash(id) & (sim->cap_index - 1);
    while (sim->index[k])
        k = (k + 1) & (sim->cap_index - 1);
    sim->index[k] = ++sim->n_recs;
    return 1;
}

void sim_record_reset(struct ewtp_sim *sim)
{
    for (size_t i = 0; i < sim->n_recs; i++)
        free(sim->recs[i].id);
    free(sim->recs);
    free(sim->index);
    sim->recs = NULL;
    sim->index = NULL;
    sim->n_recs = sim->cap_recs = sim->cap_index = 0;
    sim->rec_total = 0;
}

const char *sim_record_json(struct ewtp_sim *sim, struct ewtp_arena *a)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_int(w, "total", (int64_t)sim->rec_total);
    ewtp_jsonw_kv_int(w, "unique", (int64_t)sim->n_recs);
    ewtp_jsonw_kv_int(w, "duplicates", (int64_t)(sim->rec_total - sim->n_recs));
    ewtp_jsonw_key(w, "ids");
    ewtp_jsonw_object_begin(w);
    for (size_t i = 0; i < sim->n_recs; i++) {
        ewtp_jsonw_key(w, sim->recs[i].id);
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_int(w, "count", (int64_t)sim->recs[i].count);
        ewtp_jsonw_kv_int(w, "duplicates", (int64_t)sim->recs[i].count - 1);
        ewtp_jsonw_kv_int(w, "first_ms", sim->recs[i].first_ms);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_kv_int(w, "faults", (int64_t)sim->n_faults);
    ewtp_jsonw_key(w, "callbacks");
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_int(w, "sent", (int64_t)sim->cb_sent);
    ewtp_jsonw_kv_int(w, "delivered", (int64_t)sim->cb_delivered);
    ewtp_jsonw_kv_int(w, "failed", (int64_t)sim->cb_failed);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_object_end(w);
    const char *out = NULL;
    size_t len = 0;
    if (w == NULL || ewtp_jsonw_finish(w, &out, &len) != 0)
        return NULL;
    return out;
}

/* ---- A module's settings ------------------------------------------------------------------ */

int ewtp_sim_set_string(char **field, const char *value, const char *def)
{
    return ewtp_sim_set_string_ex(field, value, def, 0);
}

int ewtp_sim_set_string_ex(char **field, const char *value, const char *def, unsigned flags)
{
    if (value && *value == '\0' && (flags & EWTP_SIM_EMPTY_IS_DEFAULT))
        value = NULL;
    const char *v = value ? value : def;
    char *copy = v && *v ? strdup(v) : NULL;
    if (v && *v && copy == NULL)
        return -EWTP_ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

int ewtp_sim_set_bool(const char *key, const char *value, bool def, struct ewtp_errors *why,
                      bool *out)
{
    if (value == NULL) {
        *out = def;
        return 0;
    }
    if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcmp(value, "false") == 0 ||
        strcmp(value, "0") == 0) {
        *out = value[0] == 't' || value[0] == '1';
        return 0;
    }
    ewtp_errors_add(why, key, "type", "%s must be true or false", key);
    return -EWTP_EINVAL;
}

int ewtp_sim_set_int(const char *key, const char *value, int64_t def, int64_t min, int64_t max,
                     struct ewtp_errors *why, int64_t *out)
{
    return ewtp_sim_set_int_ex(key, value, def, min, max, 0, why, out);
}

int ewtp_sim_set_int_ex(const char *key, const char *value, int64_t def, int64_t min, int64_t max,
                        unsigned flags, struct ewtp_errors *why, int64_t *out)
{
    if (value && *value == '\0' && (flags & EWTP_SIM_EMPTY_IS_DEFAULT))
        value = NULL;
    int64_t v = def;
    if (value && ewtp_sim_parse_int(value, min, max, &v) != 0) {
        ewtp_errors_add(why, key, "range", "%s must be %lld to %lld", key, (long long)min,
                        (long long)max);
        return -EWTP_EINVAL;
    }
    *out = v;
    return 0;
}

int ewtp_sim_apply_settings(void *state, ewtp_sim_set_fn set, const char *const *defaults,
                            const struct ewtp_settings *settings, const char *known,
                            struct ewtp_errors *why)
{
    for (size_t i = 0; defaults && defaults[i]; i++) {
        int rc = set(state, defaults[i], NULL, why);
        if (rc != 0)
            return rc;
    }
    int rc = 0;
    for (size_t i = 0; i < ewtp_settings_count(settings); i++) {
        const char *name = NULL;
        const struct ewtp_settings *v = ewtp_settings_index(settings, i, &name);
        int r = set(state, name, ewtp_settings_value_string(v), why);
        if (r == -EWTP_ENOTFOUND) {
            if (known)
                ewtp_errors_add(why, name, "unknown_member", "unknown setting %s (known: %s)", name,
                                known);
            else
                ewtp_errors_add(why, name, "unknown_member", "unknown setting %s", name);
            r = -EWTP_EINVAL;
        }
        if (r != 0 && rc == 0)
            rc = r;
    }
    return rc;
}
