/* loader.h — loading country plugins and creating their instances.
 *
 * ewtp_plugin_load() dlopens a plugin with RTLD_NOW|RTLD_LOCAL and checks its descriptor
 * (STYLE.md §2): major equal to EWTP_ABI_MAJOR, minor not newer than EWTP_ABI_MINOR, size at
 * least EWTP_PLUGIN_MIN_SIZE, name/country set, the required callbacks present. Any
 * failure is a sentence a country team can act on (which file, what was wanted, what it
 * offered, what to do) and the library is closed again.
 *
 * With a cache_dir, the file is first copied to <cache_dir>/<name>.<sha256:16>.so and that
 * copy is opened: dlopen treats a reused path as the same library, so a plugin upgraded on
 * disk loads side by side with the running one, and identical content shares one copy.
 *
 * Handles and instances are reference counted (atomics); the last unref of an instance
 * destroys it, the last unref of a handle dlcloses it, in that order. Thread-safe.
 */
#ifndef EWTP_LOADER_H
#define EWTP_LOADER_H

#include <stddef.h>

#include <ewtp/plugin.h>

struct ewtp_plugin_handle;
struct ewtp_instance;

/* Loads the plugin at path. 0 and a new handle (caller unrefs), or a negative EWTP_E* code
 * and *why (malloc'd sentence, caller frees). cache_dir may be NULL (open in place). */
int ewtp_plugin_load(const char *path, const char *cache_dir, struct ewtp_plugin_handle **out,
                     char **why);
void ewtp_plugin_ref(struct ewtp_plugin_handle *h);
void ewtp_plugin_unref(struct ewtp_plugin_handle *h);
/* Borrowed while the handle is held. */
const struct ewtp_plugin *ewtp_plugin_descriptor(const struct ewtp_plugin_handle *h);
const char *ewtp_plugin_path(const struct ewtp_plugin_handle *h);   /* as given */
const char *ewtp_plugin_sha256(const struct ewtp_plugin_handle *h); /* hex of the file */

/* Creates an instance named name with settings (NULL: empty defaults). 0 and a new
 * instance (caller unrefs), or a negative code with every reason in why (create's own
 * errors, prefixed with the instance name by the caller if it wants). The instance holds a
 * reference on the handle. settings are borrowed for the duration of the call only. */
int ewtp_instance_create(struct ewtp_plugin_handle *h, const char *name,
                         const struct ewtp_host *host, const struct ewtp_settings *settings,
                         struct ewtp_instance **out, struct ewtp_errors *why);
void ewtp_instance_unref(struct ewtp_instance *inst);
const char *ewtp_instance_name(const struct ewtp_instance *inst);
const struct ewtp_plugin *ewtp_instance_plugin(const struct ewtp_instance *inst);
const void *ewtp_instance_state(const struct ewtp_instance *inst);
struct ewtp_plugin_handle *ewtp_instance_handle(const struct ewtp_instance *inst);

/* Every loaded plugin of a directory (files ewtp-*.so, not ewtp-sim-*.so), for ewtpctl.
 * Files that fail to load are reported in why (one sentence each) and skipped. */
struct ewtp_plugin_set {
    struct ewtp_plugin_handle **items;
    size_t n;
};
int ewtp_plugin_set_load_dir(const char *dir, const char *cache_dir, struct ewtp_plugin_set *set,
                             struct ewtp_errors *why);
void ewtp_plugin_set_free(struct ewtp_plugin_set *set);
/* The plugin serving destination (country code) and kind, or NULL. */
struct ewtp_plugin_handle *ewtp_plugin_set_find(const struct ewtp_plugin_set *set,
                                                const char *destination, enum ewtp_kind kind);

#endif
