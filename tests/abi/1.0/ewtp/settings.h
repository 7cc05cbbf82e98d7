/* ewtp/settings.h — a plugin instance's settings as a read-only tree.
 *
 * The host builds the tree from its configuration (libconfig in ewtpd, a JSON file in
 * ewtpctl and the golden vectors) and hands it to create(); plugins read it with the
 * accessors and never see libconfig types. Paths are dot-separated member names
 * ("dxp.sender_id"). A tree is immutable once built and may be read from any thread.
 */
#ifndef EWTP_SETTINGS_H
#define EWTP_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/errors.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ewtp_settings;

enum ewtp_setting_type {
    EWTP_SET_NONE = 0, /* absent */
    EWTP_SET_GROUP,
    EWTP_SET_LIST,
    EWTP_SET_STRING,
    EWTP_SET_INT,
    EWTP_SET_BOOL,
};

/* Reading. A NULL tree reads as empty: every lookup gives the default. */
enum ewtp_setting_type ewtp_settings_type(const struct ewtp_settings *s, const char *path);
/* The string at path, or def when absent. -> *ok false (when ok is not NULL) when present
 * with another type, so create() can say "setting X must be a string". */
const char *ewtp_settings_string(const struct ewtp_settings *s, const char *path, const char *def,
                                 bool *ok);
int64_t ewtp_settings_int(const struct ewtp_settings *s, const char *path, int64_t def, bool *ok);
bool ewtp_settings_bool(const struct ewtp_settings *s, const char *path, bool def, bool *ok);
/* A group or list member as its own tree (borrowed), or NULL. */
const struct ewtp_settings *ewtp_settings_child(const struct ewtp_settings *s, const char *path);
/* Number of members of a group or elements of a list; i-th element (and its name for
 * group members, NULL for list elements). */
size_t ewtp_settings_count(const struct ewtp_settings *s);
const struct ewtp_settings *ewtp_settings_index(const struct ewtp_settings *s, size_t i,
                                                const char **name);
/* Scalar value of this node itself (for list elements). */
const char *ewtp_settings_value_string(const struct ewtp_settings *s);
/* Reports every member of the group at path whose name is not in known (NULL-terminated)
 * as an "unknown_member" error at "/<path>/<name>"; returns the number found. */
size_t ewtp_settings_check_known(const struct ewtp_settings *s, const char *path,
                                 const char *const *known, struct ewtp_errors *errs);

/* Building (hosts only). A new tree is an empty group; set_* create intermediate groups.
 * Returns 0 or -EWTP_ENOMEM / -EWTP_EINVAL (path through a non-group). */
struct ewtp_settings *ewtp_settings_new(void);
void ewtp_settings_free(struct ewtp_settings *s);
int ewtp_settings_set_string(struct ewtp_settings *s, const char *path, const char *v);
int ewtp_settings_set_int(struct ewtp_settings *s, const char *path, int64_t v);
int ewtp_settings_set_bool(struct ewtp_settings *s, const char *path, bool v);
/* Appends a string to the list at path (created when absent). */
int ewtp_settings_list_append_string(struct ewtp_settings *s, const char *path, const char *v);
/* Builds a tree from a JSON object (objects -> groups, arrays -> lists of scalars).
 * Returns NULL with an error in errs when the JSON is not an object or holds nulls/floats. */
struct ewtp_settings *ewtp_settings_from_json(const void *data, size_t len,
                                              struct ewtp_errors *errs);

#ifdef __cplusplus
}
#endif
#endif
