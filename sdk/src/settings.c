/* settings.c — a plugin instance's settings as a read-only tree (ewtp/settings.h).
 *
 * Every node is a struct ewtp_settings: a group (named members, in insertion order), a
 * list (unnamed elements) or a scalar. Scalars also keep their text ("42", "true") so that
 * ewtp_settings_value_string reads any list element, whatever its type: ewtpd's libconfig
 * loader stores list integers as strings, and JSON lists may hold integers.
 */
#include <ewtp/settings.h>

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ewtp_settings {
    enum ewtp_setting_type type;
    char *name; /* member name in a group; NULL for the root and list elements */
    char *text; /* scalars: the string, or the integer / boolean as text */
    int64_t i;
    bool b;
    struct ewtp_settings **kids; /* groups and lists */
    size_t n, cap;
};

static void node_clear(struct ewtp_settings *s)
{
    for (size_t k = 0; k < s->n; k++)
        ewtp_settings_free(s->kids[k]);
    free(s->kids);
    free(s->text);
    s->kids = NULL;
    s->text = NULL;
    s->n = s->cap = 0;
}

void ewtp_settings_free(struct ewtp_settings *s)
{
    if (!s)
        return;
    node_clear(s);
    free(s->name);
    free(s);
}

static struct ewtp_settings *node_new(enum ewtp_setting_type type, const char *name,
                                      size_t name_len)
{
    struct ewtp_settings *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->type = type;
    if (name) {
        s->name = strndup(name, name_len);
        if (!s->name) {
            free(s);
            return NULL;
        }
    }
    return s;
}

struct ewtp_settings *ewtp_settings_new(void)
{
    return node_new(EWTP_SET_GROUP, NULL, 0);
}

static int add_kid(struct ewtp_settings *parent, struct ewtp_settings *kid)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        struct ewtp_settings **k = realloc(parent->kids, cap * sizeof(*k));
        if (!k)
            return -EWTP_ENOMEM;
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

static struct ewtp_settings *member(const struct ewtp_settings *g, const char *name, size_t len)
{
    for (size_t k = 0; k < g->n; k++)
        if (strncmp(g->kids[k]->name, name, len) == 0 && g->kids[k]->name[len] == 0)
            return g->kids[k];
    return NULL;
}

/* The node at a dotted path; NULL or "" is s itself. */
static const struct ewtp_settings *lookup(const struct ewtp_settings *s, const char *path)
{
    if (!s || !path || !*path)
        return s;
    const char *p = path;
    while (s) {
        if (s->type != EWTP_SET_GROUP)
            return NULL;
        size_t len = strcspn(p, ".");
        s = member(s, p, len);
        if (!p[len])
            return s;
        p += len + 1;
    }
    return NULL;
}

enum ewtp_setting_type ewtp_settings_type(const struct ewtp_settings *s, const char *path)
{
    const struct ewtp_settings *n = lookup(s, path);
    return n ? n->type : EWTP_SET_NONE;
}

/* Shared by the typed getters: the node of that type, or NULL with *ok set accordingly. */
static const struct ewtp_settings *typed(const struct ewtp_settings *s, const char *path,
                                         enum ewtp_setting_type type, bool *ok)
{
    const struct ewtp_settings *n = lookup(s, path);
    if (ok)
        *ok = !n || n->type == type;
    return n && n->type == type ? n : NULL;
}

const char *ewtp_settings_string(const struct ewtp_settings *s, const char *path, const char *def,
                                 bool *ok)
{
    const struct ewtp_settings *n = typed(s, path, EWTP_SET_STRING, ok);
    return n ? n->text : def;
}

int64_t ewtp_settings_int(const struct ewtp_settings *s, const char *path, int64_t def, bool *ok)
{
    const struct ewtp_settings *n = typed(s, path, EWTP_SET_INT, ok);
    return n ? n->i : def;
}

bool ewtp_settings_bool(const struct ewtp_settings *s, const char *path, bool def, bool *ok)
{
    const struct ewtp_settings *n = typed(s, path, EWTP_SET_BOOL, ok);
    return n ? n->b : def;
}

const struct ewtp_settings *ewtp_settings_child(const struct ewtp_settings *s, const char *path)
{
    if (!path || !*path)
        return NULL;
    return lookup(s, path);
}

size_t ewtp_settings_count(const struct ewtp_settings *s)
{
    return s && (s->type == EWTP_SET_GROUP || s->type == EWTP_SET_LIST) ? s->n : 0;
}

const struct ewtp_settings *ewtp_settings_index(const struct ewtp_settings *s, size_t i,
                                                const char **name)
{
    if (!s || i >= ewtp_settings_count(s))
        return NULL;
    if (name)
        *name = s->kids[i]->name;
    return s->kids[i];
}

const char *ewtp_settings_value_string(const struct ewtp_settings *s)
{
    return s ? s->text : NULL;
}

/* Appends name to a JSON Pointer under construction, escaping '~' and '/' (RFC 6901). */
static void pointer_add(char *buf, size_t size, size_t *len, const char *name, size_t n)
{
    if (*len + 1 < size)
        buf[(*len)++] = '/';
    for (size_t k = 0; k < n && *len + 2 < size; k++) {
        if (name[k] == '~' || name[k] == '/') {
            buf[(*len)++] = '~';
            buf[(*len)++] = name[k] == '~' ? '0' : '1';
        } else {
            buf[(*len)++] = name[k];
        }
    }
    buf[*len] = 0;
}

size_t ewtp_settings_check_known(const struct ewtp_settings *s, const char *path,
                                 const char *const *known, struct ewtp_errors *errs)
{
    const struct ewtp_settings *g = lookup(s, path);
    if (!g || g->type != EWTP_SET_GROUP)
        return 0;
    char base[EWTP_POINTER_MAX] = "";
    size_t blen = 0;
    for (const char *p = path; p && *p;) {
        size_t n = strcspn(p, ".");
        pointer_add(base, sizeof base, &blen, p, n);
        p += n + (p[n] == '.');
    }
    size_t found = 0;
    for (size_t k = 0; k < g->n; k++) {
        const char *name = g->kids[k]->name;
        bool ok = false;
        for (const char *const *kn = known; kn && *kn && !ok; kn++)
            ok = strcmp(*kn, name) == 0;
        if (ok)
            continue;
        found++;
        char ptr[EWTP_POINTER_MAX];
        size_t len = blen;
        memcpy(ptr, base, blen + 1);
        pointer_add(ptr, sizeof ptr, &len, name, strlen(name));
        ewtp_errors_add(errs, ptr, "unknown_member", "unknown setting \"%s%s%s\"", path ? path : "",
                        path && *path ? "." : "", name);
    }
    return found;
}

/* Finds or makes the node at path: intermediate groups are created, the last node is
 * created with type `type` when absent. *out gets the node. */
static int walk_create(struct ewtp_settings *s, const char *path, enum ewtp_setting_type type,
                       struct ewtp_settings **out)
{
    if (!s || !path || !*path)
        return -EWTP_EINVAL;
    const char *p = path;
    for (;;) {
        if (s->type != EWTP_SET_GROUP)
            return -EWTP_EINVAL;
        size_t len = strcspn(p, ".");
        if (len == 0)
            return -EWTP_EINVAL; /* "", "a..b", ".a", "a." */
        bool last = !p[len];
        struct ewtp_settings *m = member(s, p, len);
        if (!m) {
            m = node_new(last ? type : EWTP_SET_GROUP, p, len);
            if (!m)
                return -EWTP_ENOMEM;
            if (add_kid(s, m) < 0) {
                ewtp_settings_free(m);
                return -EWTP_ENOMEM;
            }
        }
        if (last) {
            *out = m;
            return 0;
        }
        s = m;
        p += len + 1;
    }
}

/* Turns node n into a scalar holding text (taken). */
static int set_scalar(struct ewtp_settings *s, const char *path, enum ewtp_setting_type type,
                      char *text, int64_t i, bool b)
{
    if (!text)
        return -EWTP_ENOMEM;
    struct ewtp_settings *n;
    int rc = walk_create(s, path, type, &n);
    if (rc < 0) {
        free(text);
        return rc;
    }
    node_clear(n);
    n->type = type;
    n->text = text;
    n->i = i;
    n->b = b;
    return 0;
}

static char *int_text(int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return strdup(buf);
}

int ewtp_settings_set_string(struct ewtp_settings *s, const char *path, const char *v)
{
    if (!v)
        return -EWTP_EINVAL;
    return set_scalar(s, path, EWTP_SET_STRING, strdup(v), 0, false);
}

int ewtp_settings_set_int(struct ewtp_settings *s, const char *path, int64_t v)
{
    return set_scalar(s, path, EWTP_SET_INT, int_text(v), v, false);
}

int ewtp_settings_set_bool(struct ewtp_settings *s, const char *path, bool v)
{
    return set_scalar(s, path, EWTP_SET_BOOL, strdup(v ? "true" : "false"), 0, v);
}

int ewtp_settings_list_append_string(struct ewtp_settings *s, const char *path, const char *v)
{
    if (!v)
        return -EWTP_EINVAL;
    struct ewtp_settings *l;
    int rc = walk_create(s, path, EWTP_SET_LIST, &l);
    if (rc < 0)
        return rc;
    if (l->type != EWTP_SET_LIST)
        return -EWTP_EINVAL;
    struct ewtp_settings *e = node_new(EWTP_SET_STRING, NULL, 0);
    if (!e || !(e->text = strdup(v)) || add_kid(l, e) < 0) {
        ewtp_settings_free(e);
        return -EWTP_ENOMEM;
    }
    return 0;
}

/* ---- From JSON ------------------------------------------------------------------------- */

static int from_json(struct ewtp_settings *n, const json_t *j, char *ptr, size_t plen,
                     struct ewtp_errors *errs);

/* Fills node n (already typed by the caller for containers) from j. */
static int fill_value(struct ewtp_settings *n, const json_t *j, char *ptr, size_t plen,
                      struct ewtp_errors *errs)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        n->type = json_is_object(j) ? EWTP_SET_GROUP : EWTP_SET_LIST;
        return from_json(n, j, ptr, plen, errs);
    case JSON_STRING:
        n->type = EWTP_SET_STRING;
        n->text = strndup(json_string_value(j), json_string_length(j));
        return n->text ? 0 : -EWTP_ENOMEM;
    case JSON_INTEGER:
        n->type = EWTP_SET_INT;
        n->i = (int64_t)json_integer_value(j);
        n->text = int_text(n->i);
        return n->text ? 0 : -EWTP_ENOMEM;
    case JSON_TRUE:
    case JSON_FALSE:
        n->type = EWTP_SET_BOOL;
        n->b = json_is_true(j);
        n->text = strdup(n->b ? "true" : "false");
        return n->text ? 0 : -EWTP_ENOMEM;
    case JSON_REAL:
        ewtp_errors_add(errs, ptr, "type",
                        "decimal numbers must be written as strings (\"1.5\") in settings");
        return -EWTP_EINVAL;
    case JSON_NULL:
        ewtp_errors_add(errs, ptr, "type", "null is not a setting value; leave the member out");
        return -EWTP_EINVAL;
    }
    return -EWTP_EINVAL;
}

/* Adds the members or elements of j to the group or list n; ptr (EWTP_POINTER_MAX bytes)
 * holds the JSON Pointer of j, plen its length. Every bad value is reported. */
static int from_json(struct ewtp_settings *n, const json_t *j, char *ptr, size_t plen,
                     struct ewtp_errors *errs)
{
    int rc = 0;
    size_t count = json_is_object(j) ? json_object_size(j) : json_array_size(j);
    void *it = json_is_object(j) ? json_object_iter((json_t *)j) : NULL;
    for (size_t k = 0; k < count; k++) {
        const char *name = NULL;
        const json_t *v;
        size_t len = plen;
        if (it) {
            name = json_object_iter_key(it);
            v = json_object_iter_value(it);
            it = json_object_iter_next((json_t *)j, it);
            pointer_add(ptr, EWTP_POINTER_MAX, &len, name, strlen(name));
        } else {
            v = json_array_get(j, k);
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", k);
            pointer_add(ptr, EWTP_POINTER_MAX, &len, idx, strlen(idx));
        }
        struct ewtp_settings *kid = node_new(EWTP_SET_NONE, name, name ? strlen(name) : 0);
        int r = kid ? add_kid(n, kid) : -EWTP_ENOMEM;
        if (r < 0) {
            ewtp_settings_free(kid);
            return r;
        }
        r = fill_value(kid, v, ptr, len, errs);
        ptr[plen] = 0;
        if (r == -EWTP_ENOMEM)
            return r;
        if (r < 0)
            rc = r;
    }
    return rc;
}

struct ewtp_settings *ewtp_settings_from_json(const void *data, size_t len,
                                              struct ewtp_errors *errs)
{
    json_error_t err;
    json_t *j = json_loadb(data ? data : "", data ? len : 0, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        ewtp_errors_add(errs, "", "format", "settings are not valid JSON (line %d, column %d): %s",
                        err.line, err.column, err.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        ewtp_errors_add(errs, "", "type", "settings must be a JSON object");
        json_decref(j);
        return NULL;
    }
    struct ewtp_settings *s = ewtp_settings_new();
    char ptr[EWTP_POINTER_MAX] = "";
    int rc = s ? from_json(s, j, ptr, 0, errs) : -EWTP_ENOMEM;
    json_decref(j);
    if (rc < 0) {
        if (rc == -EWTP_ENOMEM)
            ewtp_errors_add(errs, "", "size", "out of memory while reading settings");
        ewtp_settings_free(s);
        return NULL;
    }
    return s;
}
