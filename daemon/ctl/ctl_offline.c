/* ewtpctl validate / translate: one message through the common model and its plugin. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"

void ctl_input_free(struct ctl_input *in)
{
    ewtp_message_free(in->msg);
    for (size_t i = 0; i < in->n_related; i++) {
        ewtp_message_free(in->related_msgs[i]);
        for (size_t k = 0; k < 3; k++)
            free(in->related_strings[3 * i + k]);
    }
    free(in->related_strings);
    free(in->related_msgs);
    free(in->related);
    memset(in, 0, sizeof(*in));
}

/* What a related file says beyond the message (NULL when it is a plain message). */
struct related_meta {
    char *state, *authority_ref, *tenant;
};

/* Reads and parses one file; 0 parsed (errs may hold model errors), 2 I/O (printed). With
 * meta, a {"message": ..., "state", "authority_ref", "tenant"} wrapper is unwrapped. */
static int load_message(struct ewtp_runner *r, const char *path, struct ewtp_message **m,
                        struct ewtp_errors *errs, int *format_error, struct related_meta *meta)
{
    char *data = NULL;
    size_t len = 0;
    *format_error = 0;
    if (ewtp_read_file(path, EWTP_MESSAGE_MAX_DEFAULT, &data, &len) != 0)
        return ctl_usage_error("cannot read %s: %s", path, strerror(errno));
    json_t *wrapper = meta ? json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *inner = json_object_get(wrapper, "message");
    if (json_is_object(inner) && json_object_get(wrapper, "schema") == NULL) {
        char *text = json_dumps(inner, JSON_COMPACT | JSON_PRESERVE_ORDER);
        const char *st = json_string_value(json_object_get(wrapper, "state"));
        const char *ref = json_string_value(json_object_get(wrapper, "authority_ref"));
        const char *tenant = json_string_value(json_object_get(wrapper, "tenant"));
        meta->state = st ? strdup(st) : NULL;
        meta->authority_ref = ref ? strdup(ref) : NULL;
        meta->tenant = tenant ? strdup(tenant) : NULL;
        if (text) {
            free(data);
            data = text;
            len = strlen(text);
        }
    }
    json_decref(wrapper);
    int rc = ewtp_runner_parse(r, data, len, m, errs);
    free(data);
    if (rc == -EWTP_ENOMEM)
        return ctl_usage_error("out of memory reading %s", path);
    *format_error = rc != 0;
    return 0;
}

int ctl_input_load(struct ewtp_runner *r, const char *path, const char *const *related_paths,
                   size_t n_related, struct ctl_input *in, struct ewtp_errors *errs)
{
    memset(in, 0, sizeof(*in));
    int bad_format = 0;
    int rc = load_message(r, path, &in->msg, errs, &bad_format, NULL);
    if (rc != 0)
        return rc;
    if (bad_format || ewtp_errors_blocking(errs) > 0)
        return 1;
    in->related_msgs = calloc(n_related + 1, sizeof(*in->related_msgs));
    in->related = calloc(n_related + 1, sizeof(*in->related));
    in->related_strings = calloc(3 * n_related + 1, sizeof(char *));
    if (in->related_msgs == NULL || in->related == NULL || in->related_strings == NULL)
        return ctl_usage_error("out of memory");
    for (size_t i = 0; i < n_related; i++) {
        struct ewtp_errors *rel_errs = ewtp_errors_new();
        struct ewtp_message *m = NULL;
        struct related_meta meta = {0};
        rc = load_message(r, related_paths[i], &m, rel_errs, &bad_format, &meta);
        if (rc == 0 && (bad_format || ewtp_errors_blocking(rel_errs) > 0)) {
            char *json = ewtp_errors_to_json(rel_errs);
            rc = ctl_usage_error("related message %s is not a valid ewtp/1 message: %s",
                                 related_paths[i], json ? json : "");
            free(json);
        }
        ewtp_errors_free(rel_errs);
        if (rc != 0) {
            ewtp_message_free(m);
            free(meta.state);
            free(meta.authority_ref);
            free(meta.tenant);
            return rc;
        }
        in->related_strings[3 * i] = meta.state;
        in->related_strings[3 * i + 1] = meta.authority_ref;
        in->related_strings[3 * i + 2] = meta.tenant;
        in->related_msgs[in->n_related] = m;
        in->related[in->n_related].msg = m;
        in->related[in->n_related].tenant = meta.tenant ? meta.tenant : "cli";
        in->related[in->n_related].state = meta.state ? meta.state : "accepted";
        in->related[in->n_related].authority_ref = meta.authority_ref;
        in->n_related++;
    }
    return 0;
}

int ctl_validate(int argc, char **argv, const char *config)
{
    static const struct option longopts[] = {
        CTL_COMMON_LONGOPTS,
        {"related", required_argument, NULL, CTL_OPT_RELATED},
        {NULL, 0, NULL, 0},
    };
    struct ctl_common cc = {.runner.config_path = config};
    const char **related = calloc((size_t)argc, sizeof(char *));
    size_t n_related = 0;
    int opt, rc;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == CTL_OPT_RELATED) {
            related[n_related++] = optarg;
        } else if ((rc = ctl_parse_common(&cc, opt, optarg)) != 0) {
            free(related);
            return rc > 0 ? rc : ctl_usage_error("validate: unknown option (see ewtpctl help)");
        }
    }
    if (optind != argc - 1) {
        free(related);
        return ctl_usage_error("validate needs exactly one FILE (or - for stdin)");
    }
    struct ewtp_runner *r = NULL;
    if ((rc = ctl_open_runner(&cc, &r)) != 0) {
        free(related);
        return rc;
    }
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ctl_input in;
    rc = ctl_input_load(r, argv[optind], related, n_related, &in, errs);
    if (rc == 0) {
        struct ewtp_arena *a = ewtp_arena_new();
        struct ewtp_call c;
        struct ewtp_runner_call rcall = {.related = in.related, .n_related = in.n_related};
        ewtp_runner_call_init(r, in.msg, &rcall, a, &c);
        ewtp_runner_validate(r, &c, errs);
        ewtp_arena_free(a);
        rc = ewtp_errors_blocking(errs) > 0 ? 1 : 0;
    }
    /* Invalid: the errors; valid with warnings: the warnings, same shape. */
    if (rc != 2 && ewtp_errors_count(errs) > 0)
        ctl_print_errors(errs);
    ctl_input_free(&in);
    ewtp_errors_free(errs);
    ewtp_runner_free(r);
    free(related);
    return rc;
}

static int parse_chain(const char *arg, struct ewtp_chain *chain)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(arg, &end, 10);
    if (errno || end == arg || *end != ':' || arg[0] == '-')
        return -1;
    chain->number = n;
    chain->prev_ref = end[1] ? end + 1 : NULL;
    return 0;
}

static json_t *request_json(const struct ewtp_request *req, size_t index)
{
    json_t *o = json_object();
    json_object_set_new(o, "method", json_string(req->method));
    json_object_set_new(o, "path", json_string(req->path));
    json_t *headers = json_object();
    for (size_t i = 0; i < req->n_headers; i++)
        json_object_set_new(headers, req->headers[i]->name,
                            json_string(req->headers[i]->secret ? "***" : req->headers[i]->value));
    json_object_set_new(o, "headers", headers);
    if (req->body_doc) {
        json_object_set_new(o, "body", json_string(req->body_doc));
    } else if (req->body_len > 0) {
        char name[64];
        snprintf(name, sizeof(name), "request-%zu.body", index + 1);
        json_object_set_new(o, "body", json_string(name));
    } else {
        json_object_set_new(o, "body", json_null());
    }
    json_object_set_new(o, "final", json_boolean(req->final));
    return o;
}

char *ctl_requests_json(const struct ewtp_out *out)
{
    const struct ewtp_request *const *reqs = NULL;
    size_t n = ewtp_out_requests(out, &reqs);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, request_json(reqs[i], i));
    json_t *root = json_object();
    json_object_set_new(root, "requests", arr);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    if (strchr(name, '/') || strcmp(name, "..") == 0 || name[0] == '\0')
        return ctl_usage_error("plugin produced an unsafe file name \"%s\"", name);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return ctl_usage_error("cannot write %s: %s", path, strerror(errno));
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    if (fclose(f) != 0 || w != len)
        return ctl_usage_error("cannot write %s: %s", path, strerror(errno));
    return 0;
}

int ctl_write_out(const struct ewtp_out *out, const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ctl_usage_error("cannot create %s: %s", dir, strerror(errno));
    const struct ewtp_document *const *docs = NULL;
    size_t n = ewtp_out_documents(out, &docs);
    for (size_t i = 0; i < n; i++)
        if (write_file(dir, docs[i]->name, docs[i]->data, docs[i]->len) != 0)
            return 2;
    const struct ewtp_request *const *reqs = NULL;
    size_t nr = ewtp_out_requests(out, &reqs);
    for (size_t i = 0; i < nr; i++) {
        if (reqs[i]->body_doc || reqs[i]->body_len == 0)
            continue;
        char name[64];
        snprintf(name, sizeof(name), "request-%zu.body", i + 1);
        if (write_file(dir, name, reqs[i]->body, reqs[i]->body_len) != 0)
            return 2;
    }
    char *json = ctl_requests_json(out);
    if (json == NULL)
        return ctl_usage_error("out of memory");
    size_t len = strlen(json);
    json[len] = '\n';
    int rc = write_file(dir, "requests.json", json, len + 1);
    free(json);
    return rc;
}

int ctl_translate(int argc, char **argv, const char *config)
{
    static const struct option longopts[] = {
        CTL_COMMON_LONGOPTS,
        {"out", required_argument, NULL, CTL_OPT_OUT},
        {"unsigned", no_argument, NULL, CTL_OPT_UNSIGNED},
        {"op", required_argument, NULL, CTL_OPT_OP},
        {"authority-ref", required_argument, NULL, CTL_OPT_AUTHORITY_REF},
        {"reason", required_argument, NULL, CTL_OPT_REASON},
        {"chain", required_argument, NULL, CTL_OPT_CHAIN},
        {"related", required_argument, NULL, CTL_OPT_RELATED},
        {"key-state", required_argument, NULL, CTL_OPT_KEY_STATE},
        {NULL, 0, NULL, 0},
    };
    struct ctl_common cc = {.runner.config_path = config};
    struct ewtp_runner_call rcall = {.op = EWTP_OP_SUBMIT};
    const char *out_dir = NULL, *key_state_file = NULL;
    const char *related[64];
    size_t n_related = 0;
    int opt, rc;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case CTL_OPT_RELATED:
            if (n_related == sizeof(related) / sizeof(related[0]))
                return ctl_usage_error("translate: at most 64 --related files");
            related[n_related++] = optarg;
            break;
        case CTL_OPT_KEY_STATE:
            key_state_file = optarg;
            break;
        case CTL_OPT_OUT:
            out_dir = optarg;
            break;
        case CTL_OPT_UNSIGNED:
            rcall.unsigned_ = true;
            break;
        case CTL_OPT_OP:
            if (strcmp(optarg, "cancel") == 0)
                rcall.op = EWTP_OP_CANCEL;
            else if (strcmp(optarg, "submit") == 0)
                rcall.op = EWTP_OP_SUBMIT;
            else
                return ctl_usage_error("--op %s: use submit or cancel", optarg);
            break;
        case CTL_OPT_AUTHORITY_REF:
            rcall.authority_ref = optarg;
            break;
        case CTL_OPT_REASON:
            rcall.cancel_reason = optarg;
            break;
        case CTL_OPT_CHAIN:
            if (parse_chain(optarg, &rcall.chain) != 0)
                return ctl_usage_error("--chain %s: use N:PREVREF (N the number to use, "
                                       "PREVREF the previous authority reference, may be empty)",
                                       optarg);
            rcall.has_chain = true;
            break;
        default:
            if ((rc = ctl_parse_common(&cc, opt, optarg)) != 0)
                return rc > 0 ? rc : ctl_usage_error("translate: unknown option");
        }
    }
    if (out_dir == NULL)
        return ctl_usage_error("translate needs --out DIR");
    if (optind != argc - 1)
        return ctl_usage_error("translate needs exactly one FILE (or - for stdin)");
    if (rcall.op == EWTP_OP_CANCEL && (rcall.authority_ref == NULL || rcall.cancel_reason == NULL))
        return ctl_usage_error("--op cancel needs --authority-ref REF and --reason TEXT");
    /* The ordering key's state blob the host would give the plugin (ABI 1.2). */
    char *key_state = NULL;
    size_t key_state_len = 0;
    if (key_state_file &&
        ewtp_read_file(key_state_file, 16u << 20, &key_state, &key_state_len) != 0)
        return ctl_usage_error("--key-state %s: cannot read it", key_state_file);
    rcall.key_state = key_state;
    rcall.key_state_len = key_state_len;
    struct ewtp_runner *r = NULL;
    if ((rc = ctl_open_runner(&cc, &r)) != 0) {
        free(key_state);
        return rc;
    }
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ctl_input in;
    rc = ctl_input_load(r, argv[optind], related, n_related, &in, errs);
    struct ewtp_arena *a = ewtp_arena_new();
    if (rc == 0) {
        rcall.related = in.related;
        rcall.n_related = in.n_related;
        struct ewtp_call c;
        ewtp_runner_call_init(r, in.msg, &rcall, a, &c);
        struct ewtp_out *out = NULL;
        int trc = ewtp_runner_translate(r, &c, &out, errs);
        if (trc == EWTP_RUNNER_NO_PLUGIN)
            rc = ctl_usage_error("no plugin serves destination %s, kind %s (plugins loaded from "
                                 "--plugin-dir or the default directory)",
                                 in.msg->destination, ewtp_kind_name(in.msg->kind));
        else if (trc == -EWTP_EINVAL || ewtp_errors_blocking(errs) > 0)
            rc = 1;
        else if (trc != 0)
            rc = ctl_usage_error("translate failed: %s", ewtp_strerror(trc));
        else
            rc = ctl_write_out(out, out_dir);
    }
    if (rc != 2 && ewtp_errors_count(errs) > 0)
        ctl_print_errors(errs);
    ewtp_arena_free(a);
    ctl_input_free(&in);
    ewtp_errors_free(errs);
    ewtp_runner_free(r);
    free(key_state);
    return rc;
}
