/* libconfig -> ewtp_settings conversion. */
#include "conf_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *describe(const config_setting_t *s, const char *what)
{
    char *why = NULL;
    const char *file = config_setting_source_file(s);
    if (asprintf(&why, "%s:%u: setting %s: %s", file ? file : "(config)",
                 config_setting_source_line(s),
                 config_setting_name(s) ? config_setting_name(s) : "(element)", what) < 0)
        why = NULL;
    return why;
}

/* Copies every member of group g below prefix ("" at the top) into out. */
static int copy_group(struct ewtp_settings *out, const char *prefix, const config_setting_t *g,
                      char **why)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        char path[512];
        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "",
                 config_setting_name(m));
        int rc = 0;
        switch (config_setting_type(m)) {
        case CONFIG_TYPE_GROUP:
            rc = copy_group(out, path, m, why);
            break;
        case CONFIG_TYPE_STRING:
            rc = ewtp_settings_set_string(out, path, config_setting_get_string(m));
            break;
        case CONFIG_TYPE_INT:
            rc = ewtp_settings_set_int(out, path, config_setting_get_int(m));
            break;
        case CONFIG_TYPE_INT64:
            rc = ewtp_settings_set_int(out, path, config_setting_get_int64(m));
            break;
        case CONFIG_TYPE_BOOL:
            rc = ewtp_settings_set_bool(out, path, config_setting_get_bool(m) != 0);
            break;
        case CONFIG_TYPE_ARRAY:
        case CONFIG_TYPE_LIST: {
            int len = config_setting_length(m);
            for (int j = 0; j < len && rc == 0; j++) {
                const config_setting_t *el = config_setting_get_elem(m, (unsigned)j);
                char num[32];
                const char *text = NULL;
                if (config_setting_type(el) == CONFIG_TYPE_STRING) {
                    text = config_setting_get_string(el);
                } else if (config_setting_type(el) == CONFIG_TYPE_INT ||
                           config_setting_type(el) == CONFIG_TYPE_INT64) {
                    snprintf(num, sizeof(num), "%lld", (long long)config_setting_get_int64(el));
                    text = num;
                } else {
                    *why = describe(m, "lists may hold only strings and integers");
                    return -EWTP_EINVAL;
                }
                rc = ewtp_settings_list_append_string(out, path, text);
            }
            break;
        }
        default:
            *why = describe(m, "decimal numbers must be written as strings (\"1.5\")");
            return -EWTP_EINVAL;
        }
        if (rc != 0) {
            if (*why == NULL)
                *why = describe(m, "cannot be stored");
            return rc;
        }
    }
    return 0;
}

struct ewtp_settings *ewtp_conf_settings(const config_setting_t *g, char **why)
{
    *why = NULL;
    struct ewtp_settings *out = ewtp_settings_new();
    if (out == NULL)
        return NULL;
    if (g != NULL && config_setting_is_group(g) && copy_group(out, "", g, why) != 0) {
        ewtp_settings_free(out);
        return NULL;
    }
    return out;
}
