/* conf_settings.h — libconfig groups to plugin settings trees (ewtp/settings.h).
 *
 * Plugins never see libconfig types; the host converts an instance's `settings` group
 * with this. Groups become groups, lists and arrays of scalars become lists, strings,
 * integers and booleans keep their type; floats are refused (money is a string). */
#ifndef EWTP_CONF_SETTINGS_H
#define EWTP_CONF_SETTINGS_H

#include <libconfig.h>

#include <ewtp/settings.h>

/* New tree (caller frees) from the group g (NULL: an empty tree), or NULL with a sentence
 * naming the file, line and setting in *why (malloc'd, caller frees). */
struct ewtp_settings *ewtp_conf_settings(const config_setting_t *g, char **why);

#endif
