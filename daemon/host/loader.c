/* Plugin loading: dlopen, descriptor checks, content-named copies, instances. */
#include "loader.h"
#include "util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

struct ewtp_plugin_handle {
    atomic_int refs;
    void *dl;
    const struct ewtp_plugin *desc;
    char *path;
    char sha256[65];
};

struct ewtp_instance {
    atomic_int refs;
    struct ewtp_plugin_handle *handle;
    void *state;
    char *name;
};

/* SHA-256 of a file's content, hex. */
static int hash_file(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -EWTP_EIO;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : -EWTP_ECRYPTO;
    unsigned char buf[65536];
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        if (EVP_DigestUpdate(md, buf, n) != 1)
            rc = -EWTP_ECRYPTO;
    if (rc == 0 && ferror(f))
        rc = -EWTP_EIO;
    unsigned char digest[32];
    unsigned int len = 0;
    if (rc == 0 && EVP_DigestFinal_ex(md, digest, &len) != 1)
        rc = -EWTP_ECRYPTO;
    for (unsigned i = 0; rc == 0 && i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    EVP_MD_CTX_free(md);
    fclose(f);
    return rc;
}

/* Copies src to dst via a temporary file and rename, so a half-written copy is never
 * opened by a concurrent load. */
static int copy_file(const char *src, const char *dst)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", dst, (long)getpid()) >= (int)sizeof(tmp))
        return -EWTP_ERANGE;
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -EWTP_EIO;
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -EWTP_EIO;
    }
    int rc = 0;
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                rc = -EWTP_EIO;
                break;
            }
            off += w;
        }
        if (rc)
            break;
    }
    if (n < 0)
        rc = -EWTP_EIO;
    if (close(out) != 0)
        rc = -EWTP_EIO;
    close(in);
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = -EWTP_EIO;
    if (rc)
        unlink(tmp);
    return rc;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Names the required callbacks that are NULL, or returns NULL when all are there. */
static char *missing_callbacks(const struct ewtp_plugin *d)
{
    const struct {
        const char *name;
        int present;
    } req[] = {
        {"create", d->create != NULL},       {"destroy", d->destroy != NULL},
        {"validate", d->validate != NULL},   {"translate", d->translate != NULL},
        {"interpret", d->interpret != NULL},
    };
    char list[128] = "";
    for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
        if (req[i].present)
            continue;
        if (list[0])
            strcat(list, ", ");
        strcat(list, req[i].name);
    }
    return list[0] ? strdup(list) : NULL;
}

/* The minor this host offers: its own headers', or the loaded libewtp's when that is older
 * (a plugin may call any libewtp function of its minor). */
static unsigned host_minor(void)
{
    unsigned lib = ewtp_abi_major() == EWTP_ABI_MAJOR ? ewtp_abi_minor() : 0;
    return lib > EWTP_ABI_MINOR ? EWTP_ABI_MINOR : lib;
}

/* The descriptor checks of STYLE.md §2; NULL when acceptable, else the sentence. */
static char *check_descriptor(const char *path, const struct ewtp_plugin *d)
{
    unsigned minor = host_minor();
    if (d->abi_major != EWTP_ABI_MAJOR)
        return ewtp_asprintf("%s was built for plugin ABI %u.%u but this host speaks ABI %d.%u: "
                             "rebuild the plugin against the ewtp SDK %d.x headers (libewtp-dev)",
                             path, d->abi_major, d->abi_minor, EWTP_ABI_MAJOR, minor,
                             EWTP_ABI_MAJOR);
    if (d->abi_minor > minor)
        return ewtp_asprintf("%s needs plugin ABI %u.%u but this host offers only %d.%u: upgrade "
                             "ewtpd, or rebuild the plugin against the %d.%u headers",
                             path, d->abi_major, d->abi_minor, EWTP_ABI_MAJOR, minor,
                             EWTP_ABI_MAJOR, minor);
    if (d->size < EWTP_PLUGIN_MIN_SIZE)
        return ewtp_asprintf(
            "%s has a descriptor of %zu bytes, smaller than the %zu bytes every ABI "
            "%d plugin has: it was not built with EWTP_PLUGIN_DESCRIPTOR() from "
            "<ewtp/plugin.h>",
            path, d->size, (size_t)EWTP_PLUGIN_MIN_SIZE, EWTP_ABI_MAJOR);
    if (d->name == NULL || d->name[0] == '\0' || d->country == NULL || strlen(d->country) != 2)
        return ewtp_asprintf("%s: its descriptor must set .name and a two-letter .country "
                             "(the destination it serves)",
                             path);
    if (d->batch != NULL && d->batch->size < offsetof(struct ewtp_batch_limits, max_wait_ms) +
                                                 sizeof(d->batch->max_wait_ms))
        return ewtp_asprintf("%s (plugin \"%s\"): its batch limits have size %zu: fill them with "
                             "EWTP_BATCH_LIMITS_INIT(...) from <ewtp/plugin.h>",
                             path, d->name, d->batch->size);
    char *missing = missing_callbacks(d);
    if (missing) {
        char *why = ewtp_asprintf("%s (plugin \"%s\"): required callback(s) %s are NULL: every "
                                  "plugin implements create, destroy, validate, translate and "
                                  "interpret",
                                  path, d->name, missing);
        free(missing);
        return why;
    }
    return NULL;
}

int ewtp_plugin_load(const char *path, const char *cache_dir, struct ewtp_plugin_handle **out,
                     char **why)
{
    *out = NULL;
    *why = NULL;
    char hex[65] = "";
    if (hash_file(path, hex) != 0) {
        *why = ewtp_asprintf("cannot read plugin %s: %s", path, strerror(errno));
        return -EWTP_EIO;
    }
    char copy[4096];
    const char *open_path = path;
    if (cache_dir != NULL) {
        char stem[256];
        snprintf(stem, sizeof(stem), "%s", base_name(path));
        char *dot = strstr(stem, ".so");
        if (dot)
            *dot = '\0';
        if (snprintf(copy, sizeof(copy), "%s/%s.%.16s.so", cache_dir, stem, hex) >=
            (int)sizeof(copy)) {
            *why = ewtp_asprintf("plugin cache path too long for %s", path);
            return -EWTP_ERANGE;
        }
        struct stat st;
        if (stat(copy, &st) != 0 && copy_file(path, copy) != 0) {
            *why = ewtp_asprintf("cannot copy plugin %s to %s: %s", path, copy, strerror(errno));
            return -EWTP_EIO;
        }
        open_path = copy;
    }
    void *dl = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        *why = ewtp_asprintf("cannot load plugin %s: %s (check that it was linked against libewtp "
                             "only and that every symbol it uses exists)",
                             path, dlerror());
        return -EWTP_EINVAL;
    }
    const struct ewtp_plugin *d = dlsym(dl, EWTP_PLUGIN_SYMBOL);
    if (d == NULL) {
        *why =
            ewtp_asprintf("%s is not an ewtp plugin: it exports no \"%s\" descriptor; declare it "
                          "with EWTP_PLUGIN_DESCRIPTOR() from <ewtp/plugin.h>",
                          path, EWTP_PLUGIN_SYMBOL);
        dlclose(dl);
        return -EWTP_EINVAL;
    }
    char *bad = check_descriptor(path, d);
    if (bad) {
        *why = bad;
        dlclose(dl);
        return -EWTP_EINVAL;
    }
    struct ewtp_plugin_handle *h = calloc(1, sizeof(*h));
    if (h == NULL || (h->path = strdup(path)) == NULL) {
        free(h);
        dlclose(dl);
        return -EWTP_ENOMEM;
    }
    atomic_init(&h->refs, 1);
    h->dl = dl;
    h->desc = d;
    memcpy(h->sha256, hex, sizeof(h->sha256));
    *out = h;
    return 0;
}

void ewtp_plugin_ref(struct ewtp_plugin_handle *h)
{
    if (h)
        atomic_fetch_add(&h->refs, 1);
}

void ewtp_plugin_unref(struct ewtp_plugin_handle *h)
{
    if (h == NULL || atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    dlclose(h->dl);
    free(h->path);
    free(h);
}

const struct ewtp_plugin *ewtp_plugin_descriptor(const struct ewtp_plugin_handle *h)
{
    return h->desc;
}

const char *ewtp_plugin_path(const struct ewtp_plugin_handle *h)
{
    return h->path;
}

const char *ewtp_plugin_sha256(const struct ewtp_plugin_handle *h)
{
    return h->sha256;
}

int ewtp_instance_create(struct ewtp_plugin_handle *h, const char *name,
                         const struct ewtp_host *host, const struct ewtp_settings *settings,
                         struct ewtp_instance **out, struct ewtp_errors *why)
{
    *out = NULL;
    struct ewtp_instance *inst = calloc(1, sizeof(*inst));
    if (inst == NULL || (inst->name = strdup(name ? name : h->desc->name)) == NULL) {
        free(inst);
        return -EWTP_ENOMEM;
    }
    struct ewtp_errors *own = ewtp_errors_new();
    if (own == NULL) {
        free(inst->name);
        free(inst);
        return -EWTP_ENOMEM;
    }
    void *state = NULL;
    int rc = h->desc->create(host, settings, &state, own);
    if (rc == 0 && ewtp_errors_blocking(own) > 0)
        rc = -EWTP_EINVAL;
    if (rc != 0) {
        if (ewtp_errors_count(own) == 0)
            ewtp_errors_add(own, "", "create",
                            "plugin \"%s\" (%s) failed to create instance \"%s\": %s",
                            h->desc->name, h->path, inst->name, ewtp_strerror(rc));
        if (why)
            ewtp_errors_append(why, own, NULL);
        if (state)
            h->desc->destroy(state);
        ewtp_errors_free(own);
        free(inst->name);
        free(inst);
        return rc < 0 ? rc : -EWTP_EINVAL;
    }
    ewtp_errors_free(own);
    atomic_init(&inst->refs, 1);
    inst->state = state;
    inst->handle = h;
    ewtp_plugin_ref(h);
    *out = inst;
    return 0;
}

void ewtp_instance_unref(struct ewtp_instance *inst)
{
    if (inst == NULL || atomic_fetch_sub(&inst->refs, 1) != 1)
        return;
    /* destroy before dlclose: the plugin's code must still be mapped. */
    inst->handle->desc->destroy(inst->state);
    ewtp_plugin_unref(inst->handle);
    free(inst->name);
    free(inst);
}

const char *ewtp_instance_name(const struct ewtp_instance *inst)
{
    return inst->name;
}

const struct ewtp_plugin *ewtp_instance_plugin(const struct ewtp_instance *inst)
{
    return inst->handle->desc;
}

const void *ewtp_instance_state(const struct ewtp_instance *inst)
{
    return inst->state;
}

struct ewtp_plugin_handle *ewtp_instance_handle(const struct ewtp_instance *inst)
{
    return inst->handle;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ewtp_plugin_set_load_dir(const char *dir, const char *cache_dir, struct ewtp_plugin_set *set,
                             struct ewtp_errors *why)
{
    set->items = NULL;
    set->n = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (why)
            ewtp_errors_add(why, "", "io", "cannot open plugin directory %s: %s", dir,
                            strerror(errno));
        return -EWTP_EIO;
    }
    char **names = NULL;
    size_t n_names = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "ewtp-", 5) != 0 || strncmp(e->d_name, "ewtp-sim-", 9) == 0 ||
            len < 4 || strcmp(e->d_name + len - 3, ".so") != 0)
            continue;
        char **grown = realloc(names, (n_names + 1) * sizeof(*names));
        if (grown == NULL)
            break;
        names = grown;
        if ((names[n_names] = strdup(e->d_name)) != NULL)
            n_names++;
    }
    closedir(d);
    if (n_names)
        qsort(names, n_names, sizeof(*names), compare_names);
    set->items = calloc(n_names ? n_names : 1, sizeof(*set->items));
    for (size_t i = 0; i < n_names; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        free(names[i]);
        struct ewtp_plugin_handle *h = NULL;
        char *sentence = NULL;
        if (ewtp_plugin_load(path, cache_dir, &h, &sentence) == 0 && set->items)
            set->items[set->n++] = h;
        else if (why && sentence)
            ewtp_errors_add(why, "", "plugin", "%s", sentence);
        free(sentence);
    }
    free(names);
    return set->items ? 0 : -EWTP_ENOMEM;
}

void ewtp_plugin_set_free(struct ewtp_plugin_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        ewtp_plugin_unref(set->items[i]);
    free(set->items);
    set->items = NULL;
    set->n = 0;
}

struct ewtp_plugin_handle *ewtp_plugin_set_find(const struct ewtp_plugin_set *set,
                                                const char *destination, enum ewtp_kind kind)
{
    if (destination == NULL || kind < 0 || kind >= EWTP_KIND_COUNT)
        return NULL;
    for (size_t i = 0; i < set->n; i++) {
        const struct ewtp_plugin *d = set->items[i]->desc;
        if (strcmp(d->country, destination) == 0 && (d->kinds & EWTP_KIND_BIT(kind)))
            return set->items[i];
    }
    return NULL;
}
