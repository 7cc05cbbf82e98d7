/* api_json.c — see api_json.h. */
#include "api_json.h"
#include "util.h"

#include <ewtp/errors.h>

static json_t *time_json(int64_t ms)
{
    char buf[40];
    return json_string(ewtp_fmt_time(buf, sizeof(buf), ms));
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* A stored JSON text as a value; a text that does not parse (never written by us) shows up
 * as a string rather than breaking the whole answer. */
static json_t *stored_json(const char *text)
{
    if (!text)
        return json_null();
    json_t *j = json_loads(text, 0, NULL);
    return j ? j : json_string(text);
}

json_t *ewtp_api_status_obj(const struct ewtp_store_status *s)
{
    json_t *o = json_object();
    json_t *receipts = json_array();
    json_t *errors = json_array();
    if (!o || !receipts || !errors) {
        json_decref(o);
        json_decref(receipts);
        json_decref(errors);
        return NULL;
    }
    json_object_set_new(o, "id", json_string(s->id));
    json_object_set_new(o, "tenant", json_string(s->tenant));
    json_object_set_new(o, "kind", json_string(s->kind));
    json_object_set_new(o, "destination", json_string(s->destination));
    json_object_set_new(o, "plugin", json_string(s->plugin));
    json_object_set_new(o, "state", json_string(ewtp_store_state_name(s->state)));
    json_object_set_new(o, "attempts", json_integer(s->attempts));
    bool due = s->state == EWTP_STORE_ACCEPTED || s->state == EWTP_STORE_RETRYING;
    json_object_set_new(o, "next_attempt_at", due ? time_json(s->next_attempt_at) : json_null());
    json_object_set_new(o, "authority_ref", str_or_null(s->authority_ref));

    /* errors[]: the warnings given at accept, then the last outcome's errors. */
    const char *texts[] = {s->warnings, s->errors};
    for (size_t i = 0; i < 2; i++) {
        json_t *a = stored_json(texts[i]);
        if (json_is_array(a))
            json_array_extend(errors, a);
        json_decref(a);
    }
    for (size_t i = 0; i < s->n_receipts; i++) {
        const struct ewtp_store_receipt_row *r = &s->receipts[i];
        json_t *e = json_object();
        json_object_set_new(e, "at", time_json(r->at));
        json_object_set_new(e, "state", json_string(r->state));
        json_object_set_new(e, "code", str_or_null(r->code));
        json_object_set_new(e, "message", str_or_null(r->message));
        json_array_append_new(receipts, e);
    }
    json_object_set_new(o, "receipts", receipts);
    json_object_set_new(o, "errors", errors);
    json_object_set_new(o, "created_at", time_json(s->created_at));
    json_object_set_new(o, "updated_at", time_json(s->updated_at));
    return o;
}

json_t *ewtp_api_events_obj(const struct ewtp_store_event *ev, size_t n)
{
    json_t *events = json_array();
    if (!events)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "at", time_json(ev[i].at));
        json_object_set_new(e, "type", json_string(ev[i].type));
        json_object_set_new(e, "state", json_string(ev[i].state));
        json_object_set_new(e, "attempt", json_integer(ev[i].attempt));
        json_object_set_new(e, "detail", stored_json(ev[i].detail));
        json_array_append_new(events, e);
    }
    return json_pack("{s:o}", "events", events);
}

json_t *ewtp_api_list_obj(const struct ewtp_store_page *p)
{
    json_t *items = json_array();
    if (!items)
        return NULL;
    for (size_t i = 0; i < p->n; i++) {
        json_t *o = ewtp_api_status_obj(&p->items[i]);
        if (!o) {
            json_decref(items);
            return NULL;
        }
        json_array_append_new(items, o);
    }
    return json_pack("{s:o, s:o}", "items", items, "next", str_or_null(p->next));
}

int ewtp_api_dump_take(json_t *obj, char **json)
{
    *json = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    return *json ? 0 : -EWTP_ENOMEM;
}

int ewtp_api_status_json(struct ewtp_store *st, const char *tenant, const char *id, char **json)
{
    struct ewtp_store_status *s = NULL;
    int rc = ewtp_store_status_get(st, tenant, id, &s);
    if (rc < 0)
        return rc;
    rc = ewtp_api_dump_take(ewtp_api_status_obj(s), json);
    ewtp_store_status_free(s, 1);
    return rc;
}

int ewtp_api_events_json(struct ewtp_store *st, const char *tenant, const char *id, char **json)
{
    struct ewtp_store_event *e = NULL;
    size_t n = 0;
    int rc = ewtp_store_events(st, tenant, id, &e, &n);
    if (rc < 0)
        return rc;
    rc = ewtp_api_dump_take(ewtp_api_events_obj(e, n), json);
    ewtp_store_events_free(e, n);
    return rc;
}

int ewtp_api_list_json(struct ewtp_store *st, const struct ewtp_store_filter *f, char **json)
{
    struct ewtp_store_page p;
    int rc = ewtp_store_list(st, f, &p);
    if (rc < 0)
        return rc;
    rc = ewtp_api_dump_take(ewtp_api_list_obj(&p), json);
    ewtp_store_page_free(&p);
    return rc;
}
