/* The offline pipeline of ewtpctl: plugins, settings, host, parse, validate, translate. */
#include "runner.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_settings.h"
#include "config.h"
#include "hostctx.h"
#include "loader.h"
#include "util.h"

struct runner_instance {
    struct ewtp_plugin_handle *handle; /* borrowed from the set */
    struct ewtp_instance *inst;
};

struct ewtp_runner {
    struct ewtp_plugin_set plugins;
    const char **extra_destinations; /* NULL-terminated, borrowed from descriptors */
    struct runner_instance *instances;
    size_t n_instances;
    config_t config;
    bool have_config;
    struct ewtp_hostctx *host;
    char *tenant;
    int64_t now_ms;
};

/* Signing keys of the configuration: keys = ( { name; key; cert; } | { name; command; } |
 * { name; cert; remote = { url; key; client_cert; client_key; ca_file; timeout_ms; }; } ). */
static int load_keys(struct ewtp_runner *r, struct ewtp_errors *why)
{
    const config_setting_t *keys = config_lookup(&r->config, "keys");
    if (keys == NULL)
        return 0;
    int n = config_setting_length(keys);
    for (int i = 0; i < n; i++) {
        const config_setting_t *k = config_setting_get_elem(keys, (unsigned)i);
        const char *name = NULL, *key = NULL, *cert = NULL, *command = NULL;
        config_setting_lookup_string(k, "name", &name);
        config_setting_lookup_string(k, "key", &key);
        config_setting_lookup_string(k, "cert", &cert);
        config_setting_lookup_string(k, "command", &command);
        char *sentence = NULL;
        const config_setting_t *remote = config_setting_get_member(k, "remote");
        int rc;
        if (remote != NULL) {
            /* An ewtp-signer agent; the strings are borrowed from the configuration. */
            const char *v[5] = {NULL};
            const char *const names[5] = {"url", "key", "client_cert", "client_key", "ca_file"};
            for (int j = 0; j < 5; j++)
                config_setting_lookup_string(remote, names[j], &v[j]);
            int timeout = 0;
            config_setting_lookup_int(remote, "timeout_ms", &timeout);
            struct ewtp_key_remote_conf rconf = {.url = (char *)v[0],
                                                 .key = (char *)v[1],
                                                 .client_cert = (char *)v[2],
                                                 .client_key = (char *)v[3],
                                                 .ca_file = (char *)v[4],
                                                 .timeout_ms = timeout};
            rc = ewtp_hostctx_add_remote_key(r->host, name, &rconf, cert, &sentence);
        } else {
            rc = ewtp_hostctx_add_key(r->host, name, key, cert, command, &sentence);
        }
        if (rc != 0) {
            ewtp_errors_add(why, "", "config", "%s:%u: key %s: %s",
                            config_setting_source_file(k) ? config_setting_source_file(k) : "",
                            config_setting_source_line(k), name ? name : "(unnamed)",
                            sentence ? sentence : ewtp_strerror(rc));
            free(sentence);
            return rc;
        }
    }
    return 0;
}

/* A set holding the one plugin at path, as the daemon loads it (ewtpctl plugin check PATH.so). */
static int load_one(const char *path, struct ewtp_plugin_set *set, struct ewtp_errors *why)
{
    set->n = 0;
    set->items = calloc(1, sizeof(*set->items));
    if (set->items == NULL)
        return -EWTP_ENOMEM;
    char *sentence = NULL;
    int rc = ewtp_plugin_load(path, NULL, &set->items[0], &sentence);
    if (rc == 0)
        set->n = 1;
    else
        ewtp_errors_add(why, "", "plugin", "%s", sentence ? sentence : ewtp_strerror(rc));
    free(sentence);
    return rc;
}

int ewtp_runner_open(const struct ewtp_runner_opts *opts, struct ewtp_runner **out,
                     struct ewtp_errors *why)
{
    *out = NULL;
    struct ewtp_runner *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -EWTP_ENOMEM;
    r->tenant = strdup(opts->tenant ? opts->tenant : "cli");
    r->now_ms = opts->now_ms;
    r->host = ewtp_hostctx_new(opts->config_path == NULL);
    if (r->tenant == NULL || r->host == NULL) {
        ewtp_runner_free(r);
        return -EWTP_ENOMEM;
    }
    if (opts->config_path) {
        config_init(&r->config);
        r->have_config = true;
        if (ewtp_config_check_includes(opts->config_path, why) != 0) {
            ewtp_runner_free(r);
            return -EWTP_EINVAL;
        }
        if (config_read_file(&r->config, opts->config_path) != CONFIG_TRUE) {
            ewtp_errors_add(why, "", "config", "%s:%d: %s",
                            config_error_file(&r->config) ? config_error_file(&r->config)
                                                          : opts->config_path,
                            config_error_line(&r->config), config_error_text(&r->config));
            ewtp_runner_free(r);
            return -EWTP_EINVAL;
        }
        /* Key files and secret paths in the file are relative to the file, as in ewtpd. */
        char *dir = strdup(opts->config_path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash)
            *slash = '\0';
        int rc = dir ? ewtp_hostctx_set_base_dir(r->host, slash ? dir : ".") : -EWTP_ENOMEM;
        free(dir);
        if (rc == 0)
            rc = load_keys(r, why);
        if (rc != 0) {
            ewtp_runner_free(r);
            return rc;
        }
    }
    int rc = 0;
    if (opts->plugin_file) {
        rc = load_one(opts->plugin_file, &r->plugins, why);
    } else {
        char *dir = NULL;
        if (opts->plugin_dir)
            dir = strdup(opts->plugin_dir);
        else
            ewtp_config_default_plugin_dir(&dir);
        if (dir == NULL) {
            ewtp_runner_free(r);
            return -EWTP_ENOMEM;
        }
        rc = ewtp_plugin_set_load_dir(dir, NULL, &r->plugins, why);
        free(dir);
    }
    if (rc != 0) {
        ewtp_runner_free(r);
        return rc;
    }
    r->extra_destinations = calloc(r->plugins.n + 1, sizeof(char *));
    r->instances = calloc(r->plugins.n + 1, sizeof(*r->instances));
    if (r->extra_destinations == NULL || r->instances == NULL) {
        ewtp_runner_free(r);
        return -EWTP_ENOMEM;
    }
    for (size_t i = 0; i < r->plugins.n; i++)
        r->extra_destinations[i] = ewtp_plugin_descriptor(r->plugins.items[i])->country;
    *out = r;
    return 0;
}

void ewtp_runner_free(struct ewtp_runner *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_instances; i++)
        ewtp_instance_unref(r->instances[i].inst);
    free(r->instances);
    free(r->extra_destinations);
    ewtp_plugin_set_free(&r->plugins);
    if (r->have_config)
        config_destroy(&r->config);
    ewtp_hostctx_free(r->host);
    free(r->tenant);
    free(r);
}

int ewtp_runner_parse(struct ewtp_runner *r, const void *data, size_t len,
                      struct ewtp_message **out, struct ewtp_errors *errs)
{
    struct ewtp_parse_opts po = {.size = sizeof(struct ewtp_parse_opts),
                                 .extra_destinations = r->extra_destinations};
    return ewtp_message_parse(data, len, &po, out, errs);
}

/* The `settings` group of the configuration's instance of this plugin:
 * plugins = ( { name = "cn-hangzhou"; plugin = "cn"; settings = { ... }; } ). */
static const config_setting_t *config_settings_for(struct ewtp_runner *r, const char *plugin,
                                                   const char **instance_name)
{
    if (!r->have_config)
        return NULL;
    const config_setting_t *list = config_lookup(&r->config, "plugins");
    int n = list ? config_setting_length(list) : 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *p = config_setting_get_elem(list, (unsigned)i);
        const char *name = NULL;
        if (config_setting_lookup_string(p, "plugin", &name) == CONFIG_TRUE &&
            strcmp(name, plugin) == 0) {
            config_setting_lookup_string(p, "name", instance_name);
            return config_setting_get_member(p, "settings");
        }
    }
    return NULL;
}

/* The instance of handle h, created on first use with the configuration's settings. */
static struct ewtp_instance *instance_of(struct ewtp_runner *r, struct ewtp_plugin_handle *h,
                                         struct ewtp_errors *why)
{
    for (size_t i = 0; i < r->n_instances; i++)
        if (r->instances[i].handle == h)
            return r->instances[i].inst;
    const char *name = ewtp_plugin_descriptor(h)->name;
    char *sentence = NULL;
    struct ewtp_settings *s = ewtp_conf_settings(
        config_settings_for(r, ewtp_plugin_descriptor(h)->name, &name), &sentence);
    if (s == NULL) {
        ewtp_errors_add(why, "", "config", "%s", sentence ? sentence : "out of memory");
        free(sentence);
        return NULL;
    }
    struct ewtp_instance *inst = NULL;
    int rc = ewtp_instance_create(h, name, ewtp_hostctx_table(r->host), s, &inst, why);
    ewtp_settings_free(s);
    if (rc != 0)
        return NULL;
    r->instances[r->n_instances].handle = h;
    r->instances[r->n_instances++].inst = inst;
    return inst;
}

struct ewtp_instance *ewtp_runner_instance(struct ewtp_runner *r, const struct ewtp_message *m,
                                           struct ewtp_errors *why)
{
    struct ewtp_plugin_handle *h = ewtp_plugin_set_find(&r->plugins, m->destination, m->kind);
    return h ? instance_of(r, h, why) : NULL;
}

struct ewtp_instance *ewtp_runner_instance_named(struct ewtp_runner *r, const char *plugin,
                                                 struct ewtp_errors *why)
{
    for (size_t i = 0; plugin && i < r->plugins.n; i++)
        if (strcmp(ewtp_plugin_descriptor(r->plugins.items[i])->name, plugin) == 0)
            return instance_of(r, r->plugins.items[i], why);
    return NULL;
}

const struct ewtp_host *ewtp_runner_host(struct ewtp_runner *r)
{
    return ewtp_hostctx_table(r->host);
}

int64_t ewtp_runner_now(const struct ewtp_runner *r)
{
    return r->now_ms;
}

void ewtp_runner_call_init(struct ewtp_runner *r, const struct ewtp_message *m,
                           const struct ewtp_runner_call *rc, struct ewtp_arena *a,
                           struct ewtp_call *c)
{
    ewtp_call_init(c, ewtp_hostctx_table(r->host), a, r->now_ms, r->tenant, NULL, m,
                   rc ? rc->op : EWTP_OP_SUBMIT, 0);
    c->cancel_reason = rc ? rc->cancel_reason : NULL;
    if (rc && rc->n_related) {
        /* Arrays of pointers to sized structs (ewtp/abi.h). */
        const struct ewtp_related **rel = ewtp_arena_alloc(a, rc->n_related * sizeof(*rel));
        for (size_t i = 0; rel && i < rc->n_related; i++) {
            struct ewtp_related *one = ewtp_arena_alloc(a, sizeof(*one));
            if (one == NULL) {
                rel = NULL;
                break;
            }
            *one = rc->related[i];
            one->size = sizeof(*one);
            rel[i] = one;
        }
        c->related = rel;
        c->n_related = rel ? rc->n_related : 0;
    }
    c->authority_ref = rc ? rc->authority_ref : NULL;
    if (rc && rc->has_chain) {
        struct ewtp_chain *ch = ewtp_arena_alloc(a, sizeof(*ch));
        if (ch) {
            *ch = rc->chain;
            ch->size = sizeof(*ch);
        }
        c->chain = ch;
    }
    if (rc && rc->key_state) {
        c->key_state = rc->key_state;
        c->key_state_len = rc->key_state_len;
    }
    c->unsigned_ = rc ? rc->unsigned_ : false;
}

/* The plugin for the call, with a clear error when it does not do the operation. */
static struct ewtp_instance *instance_for_call(struct ewtp_runner *r, const struct ewtp_call *c,
                                               struct ewtp_errors *errs)
{
    struct ewtp_instance *inst = ewtp_runner_instance(r, c->msg, errs);
    if (inst == NULL)
        return NULL;
    const struct ewtp_plugin *p = ewtp_instance_plugin(inst);
    uint32_t ops = p->ops ? p->ops : EWTP_OP_BIT(EWTP_OP_SUBMIT);
    if (!(ops & EWTP_OP_BIT(c->op))) {
        ewtp_errors_add(errs, "/kind", "unsupported", "the %s plugin cannot %s a %s message",
                        p->name, c->op == EWTP_OP_CANCEL ? "cancel" : "submit",
                        ewtp_kind_name(c->msg->kind));
        return NULL;
    }
    return inst;
}

int ewtp_runner_validate(struct ewtp_runner *r, const struct ewtp_call *c, struct ewtp_errors *errs)
{
    size_t before = ewtp_errors_count(errs);
    struct ewtp_instance *inst = instance_for_call(r, c, errs);
    if (inst == NULL)
        return ewtp_errors_count(errs) > before ? -EWTP_EINVAL : EWTP_RUNNER_NO_PLUGIN;
    ewtp_instance_plugin(inst)->validate(ewtp_instance_state(inst), c, errs);
    return 0;
}

int ewtp_runner_translate(struct ewtp_runner *r, const struct ewtp_call *c, struct ewtp_out **out,
                          struct ewtp_errors *errs)
{
    size_t before = ewtp_errors_count(errs);
    struct ewtp_instance *inst = instance_for_call(r, c, errs);
    if (inst == NULL)
        return ewtp_errors_count(errs) > before ? -EWTP_EINVAL : EWTP_RUNNER_NO_PLUGIN;
    const struct ewtp_plugin *p = ewtp_instance_plugin(inst);
    const void *state = ewtp_instance_state(inst);
    p->validate(state, c, errs);
    if (ewtp_errors_blocking(errs) > 0)
        return -EWTP_EINVAL;
    if (p->classify) {
        struct ewtp_route_info ri = EWTP_ROUTE_INFO_INIT();
        p->classify(state, c, &ri);
    }
    *out = ewtp_out_new(c->arena);
    if (*out == NULL)
        return -EWTP_ENOMEM;
    int rc = p->translate(state, c, *out, errs);
    if (rc == 0 && ewtp_errors_blocking(errs) > 0)
        rc = -EWTP_EINVAL;
    return rc;
}
