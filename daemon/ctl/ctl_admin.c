/* ewtpctl's admin commands: status, reload, messages, replay, retry-now, plugins,
 * chain set KEY NUMBER [PREVREF].
 * They talk to a running ewtpd over its admin socket (admin.h), found from the same
 * configuration file (`ewtpctl -c FILE`, default /etc/ewtpd/ewtpd.conf). Human output by
 * default, the daemon's JSON with --json. Exit 0 ok, 1 the daemon refused, 2 usage or
 * cannot reach the daemon. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include <libconfig.h>

#include "config.h"
#include "ctl.h"

#define DEFAULT_CONFIG "/etc/ewtpd/ewtpd.conf"

/* The admin socket the configuration names (malloc'd), or NULL after printing why. Only
 * admin_socket / state_dir are read, with libconfig alone: a file that ewtpd would refuse
 * for other reasons must still reach the daemon, so that the daemon says why (and keeps
 * running). A file libconfig cannot parse at all is reported here, with its line. */
static char *admin_socket_of(const char *config_path)
{
    struct ewtp_errors *why = ewtp_errors_new();
    int bad = why ? ewtp_config_check_includes(config_path, why) : -EWTP_ENOMEM;
    for (size_t i = 0; why && i < ewtp_errors_count(why); i++)
        fprintf(stderr, "ewtpctl: %s\n", ewtp_errors_at(why, i)->message);
    ewtp_errors_free(why);
    if (bad != 0)
        return NULL;
    config_t cfg;
    config_init(&cfg);
    char *path = NULL;
    if (config_read_file(&cfg, config_path) != CONFIG_TRUE) {
        fprintf(stderr, "ewtpctl: %s:%d: %s\n",
                config_error_file(&cfg) ? config_error_file(&cfg) : config_path,
                config_error_line(&cfg), config_error_text(&cfg));
        config_destroy(&cfg);
        return NULL;
    }
    const char *sock = NULL, *state = NULL;
    config_lookup_string(&cfg, "admin_socket", &sock);
    config_lookup_string(&cfg, "state_dir", &state);
    char *dir = strdup(config_path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    const char *base = slash ? dir : ".";
    int rc;
    if (sock)
        rc = sock[0] == '/' ? asprintf(&path, "%s", sock) : asprintf(&path, "%s/%s", base, sock);
    else if (state)
        rc = state[0] == '/' ? asprintf(&path, "%s/ewtpd.sock", state)
                             : asprintf(&path, "%s/%s/ewtpd.sock", base, state);
    else
        rc = asprintf(&path, "/run/ewtpd/ewtpd.sock");
    if (rc < 0)
        path = NULL;
    free(dir);
    config_destroy(&cfg);
    return path;
}

/* Sends one request line, reads one answer line. NULL after printing why. */
static json_t *admin_call(const char *socket_path, json_t *request, int timeout_s)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", socket_path);
    struct timeval tv = {timeout_s, 0};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        fprintf(stderr, "ewtpctl: cannot reach ewtpd at %s: %s (is it running?)\n", socket_path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char *line = json_dumps(request, JSON_COMPACT);
    size_t len = strlen(line);
    line[len] = '\n';
    ssize_t w = write(fd, line, len + 1);
    free(line);
    if (w != (ssize_t)(len + 1)) {
        fprintf(stderr, "ewtpctl: cannot send to %s: %s\n", socket_path, strerror(errno));
        close(fd);
        return NULL;
    }
    char *buf = NULL;
    size_t used = 0, cap = 0;
    for (;;) {
        if (used + 4096 > cap) {
            char *grown = realloc(buf, cap + 65536);
            if (grown == NULL)
                break;
            buf = grown;
            cap += 65536;
        }
        ssize_t n = read(fd, buf + used, cap - used - 1);
        if (n <= 0)
            break;
        used += (size_t)n;
        if (memchr(buf, '\n', used))
            break;
    }
    close(fd);
    json_t *answer = buf ? json_loadb(buf, used, 0, NULL) : NULL;
    free(buf);
    if (answer == NULL)
        fprintf(stderr, "ewtpctl: no answer from ewtpd at %s (timed out or closed)\n", socket_path);
    return answer;
}

static void print_status(json_t *a)
{
    printf("generation %lld (%s), up %llds\n",
           (long long)json_integer_value(json_object_get(a, "generation")),
           json_string_value(json_object_get(a, "config")),
           (long long)json_integer_value(json_object_get(a, "uptime_s")));
    printf("queue depth %lld, oldest pending %llds\n",
           (long long)json_integer_value(json_object_get(a, "queue_depth")),
           (long long)json_integer_value(json_object_get(a, "oldest_pending_age_s")));
    printf("reloads: %lld ok, %lld failed",
           (long long)json_integer_value(json_object_get(a, "reloads_ok")),
           (long long)json_integer_value(json_object_get(a, "reloads_failed")));
    const char *last = json_string_value(json_object_get(a, "last_reload_error"));
    printf("%s%s\n", last ? "; last failure: " : "", last ? last : "");
    const char *plugin;
    json_t *states;
    json_object_foreach(json_object_get(a, "messages"), plugin, states)
    {
        printf("  %-16s", plugin);
        const char *state;
        json_t *n;
        json_object_foreach(states, state, n)
        {
            printf(" %s=%lld", state, (long long)json_integer_value(n));
        }
        printf("\n");
    }
}

static void print_human(const char *cmd, json_t *a)
{
    if (strcmp(cmd, "status") == 0) {
        print_status(a);
    } else if (strcmp(cmd, "plugins") == 0) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(a, "plugins"), i, p)
        {
            printf("%-16s %-4s %-8s ABI %-5s %s sha256:%.16s\n",
                   json_string_value(json_object_get(p, "instance")),
                   json_string_value(json_object_get(p, "country")),
                   json_string_value(json_object_get(p, "version")),
                   json_string_value(json_object_get(p, "abi")),
                   json_string_value(json_object_get(p, "file")),
                   json_string_value(json_object_get(p, "sha256")));
        }
    } else if (strcmp(cmd, "messages") == 0) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(a, "items"), i, m)
        {
            printf("%-24s %-12s %-10s %-3s attempts=%lld %s\n",
                   json_string_value(json_object_get(m, "id")),
                   json_string_value(json_object_get(m, "tenant")),
                   json_string_value(json_object_get(m, "state")),
                   json_string_value(json_object_get(m, "destination")),
                   (long long)json_integer_value(json_object_get(m, "attempts")),
                   json_string_value(json_object_get(m, "updated_at")));
        }
        const char *next = json_string_value(json_object_get(a, "next"));
        if (next)
            printf("(more: --after %s)\n", next);
    } else if (strcmp(cmd, "reload") == 0) {
        json_t *g = json_object_get(a, "generation");
        if (g)
            printf("reloaded: generation %lld\n", (long long)json_integer_value(g));
        else
            printf("reload started\n");
    } else if (strcmp(cmd, "chain") == 0) {
        const char *ref = json_string_value(json_object_get(a, "prev_ref"));
        printf("chain %s: the next message gets %lld%s%s\n",
               json_string_value(json_object_get(a, "key")),
               (long long)json_integer_value(json_object_get(a, "number")), ref ? ", after " : "",
               ref ? ref : "");
    } else {
        printf("%s %s: %s\n", cmd, json_string_value(json_object_get(a, "id")),
               json_string_value(json_object_get(a, "state")));
    }
}

/* chain set KEY NUMBER [PREVREF] (the words after the options) into req; 0 or a usage error. */
static int chain_args(int argc, char **argv, json_t *req)
{
    if (argc < 3 || argc > 4 || strcmp(argv[0], "set") != 0)
        return ctl_usage_error("usage: ewtpctl chain set KEY NUMBER [PREVREF]");
    char *end = NULL;
    errno = 0;
    long long n = strtoll(argv[2], &end, 10);
    if (errno != 0 || end == argv[2] || *end != '\0' || n < 1)
        return ctl_usage_error("chain set: NUMBER must be an integer from 1 (the number the "
                               "next message of KEY gets)");
    json_object_set_new(req, "cmd", json_string("chain-set"));
    json_object_set_new(req, "key", json_string(argv[1]));
    json_object_set_new(req, "number", json_integer(n));
    if (argc == 4)
        json_object_set_new(req, "prev_ref", json_string(argv[3]));
    return 0;
}

int ctl_admin(int argc, char **argv, const char *config)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"wait", no_argument, NULL, 'w'},
        {"state", required_argument, NULL, 's'},
        {"tenant", required_argument, NULL, 't'},
        {"limit", required_argument, NULL, 'l'},
        {"after", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    bool json_out = false;
    json_t *req = json_pack("{s:s}", "cmd", cmd);
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json_out = true;
            break;
        case 'w':
            json_object_set_new(req, "wait", json_true());
            break;
        case 's':
            json_object_set_new(req, "state", json_string(optarg));
            break;
        case 't':
            json_object_set_new(req, "tenant", json_string(optarg));
            break;
        case 'l':
            json_object_set_new(req, "limit", json_integer(atoll(optarg)));
            break;
        case 'a':
            json_object_set_new(req, "after", json_string(optarg));
            break;
        default:
            json_decref(req);
            return ctl_usage_error("%s: unknown option (see ewtpctl help)", cmd);
        }
    }
    bool needs_id = strcmp(cmd, "replay") == 0 || strcmp(cmd, "retry-now") == 0;
    if (strcmp(cmd, "chain") == 0) {
        int urc = chain_args(argc - optind, argv + optind, req);
        if (urc != 0) {
            json_decref(req);
            return urc;
        }
    } else if (needs_id) {
        if (optind != argc - 1) {
            json_decref(req);
            return ctl_usage_error("%s needs exactly one message ID", cmd);
        }
        json_object_set_new(req, "id", json_string(argv[optind]));
    } else if (optind != argc) {
        json_decref(req);
        return ctl_usage_error("%s takes no arguments", cmd);
    }
    char *socket_path = admin_socket_of(config ? config : DEFAULT_CONFIG);
    if (socket_path == NULL) {
        json_decref(req);
        return 2;
    }
    /* A reload that waits builds a whole generation: give it time. */
    json_t *answer = admin_call(socket_path, req, strcmp(cmd, "reload") == 0 ? 300 : 30);
    free(socket_path);
    json_decref(req);
    if (answer == NULL)
        return 2;
    int rc = json_is_true(json_object_get(answer, "ok")) ? 0 : 1;
    if (json_out) {
        char *text = json_dumps(answer, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text ? text : "null");
        free(text);
    } else if (rc == 0) {
        print_human(cmd, answer);
    } else {
        fprintf(stderr, "ewtpctl: %s: %s\n", cmd,
                json_string_value(json_object_get(answer, "error")));
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(answer, "errors"), i, e)
        {
            if (i > 0 || strcmp(json_string_value(e),
                                json_string_value(json_object_get(answer, "error"))) != 0)
                fprintf(stderr, "  %s\n", json_string_value(e));
        }
    }
    json_decref(answer);
    return rc;
}
