/* ewtpctl plugin new CC [--dir DIR] [--template DIR]: a new country plugin folder from the
 * template (plugins/template/, destination ZZ).
 *
 * Every file of the template is copied, its name and its text with the template's code
 * substituted: "zz" becomes cc and "ZZ" becomes CC wherever they stand alone (not inside a
 * longer word), which covers file names (zz_plugin.c), symbols (zz_translate, ZZ_NS), the
 * CMake targets (ewtp_add_plugin(NAME zz ...) builds ewtp-zz.so and ewtp-sim-zz.so), the
 * descriptor (.name, .country), ext.zz, the XML namespace and the vectors' destination and
 * expected documents (the code has the same length, so nothing else moves). One exception:
 * under vectors/, a lowercase "zz-" is left as it is: it starts a message id (zz-ord-0001),
 * and the documents carry values derived from the id (the request id is a UUID v5 of it), so
 * keeping the ids keeps every expected document valid without regenerating it. The template
 * carries TODO(country) markers where country facts go; they are listed at the end.
 *
 * The template folder: --template DIR, else the source tree ewtpctl was built from
 * (EWTP_TEMPLATE_DIR), else ../share/ewtp/plugin-template beside the binary, else
 * /usr/share/ewtp/plugin-template (the libewtp-dev package). Nothing outside the new folder
 * is written; on a failure half-way the new folder is removed again. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

#ifndef EWTP_TEMPLATE_DIR
#define EWTP_TEMPLATE_DIR ""
#endif
#define SYSTEM_TEMPLATE_DIR "/usr/share/ewtp/plugin-template"
#define TEMPLATE_CODE "zz"
#define MAX_TEMPLATE_FILE (16u << 20)
#define MARKER "TODO(country)"

struct new_ctx {
    char lower[3], upper[3];
    bool in_vectors; /* copying below vectors/: message ids keep the template's code */
    unsigned files, markers;
    char *marker_list; /* "  file:line: text\n"..., malloc'd */
    size_t marker_len;
};

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The template's folder, or NULL (malloc'd). */
static char *find_template(const char *given)
{
    if (given)
        return is_dir(given) ? strdup(given) : NULL;
    if (EWTP_TEMPLATE_DIR[0] && is_dir(EWTP_TEMPLATE_DIR))
        return strdup(EWTP_TEMPLATE_DIR);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            static const char *const rel[] = {"../share/ewtp/plugin-template",
                                              "../../plugins/template", NULL};
            for (size_t i = 0; rel[i]; i++) {
                char *dir = NULL;
                if (asprintf(&dir, "%s/%s", exe, rel[i]) > 0 && is_dir(dir))
                    return dir;
                free(dir);
            }
        }
    }
    return is_dir(SYSTEM_TEMPLATE_DIR) ? strdup(SYSTEM_TEMPLATE_DIR) : NULL;
}

/* Replaces every stand-alone "zz"/"ZZ" of s[0..len) in place (same length); under vectors/
 * not a lowercase "zz-" (a message id). */
static void substitute(char *s, size_t len, const struct new_ctx *x)
{
    for (size_t i = 0; i + 1 < len; i++) {
        const char *with = NULL;
        if (s[i] == 'z' && s[i + 1] == 'z')
            with = x->lower;
        else if (s[i] == 'Z' && s[i + 1] == 'Z')
            with = x->upper;
        if (with == NULL)
            continue;
        bool before = i > 0 && isalpha((unsigned char)s[i - 1]);
        bool after = i + 2 < len && isalpha((unsigned char)s[i + 2]);
        if (before || after ||
            (x->in_vectors && with == x->lower && i + 2 < len && s[i + 2] == '-'))
            continue;
        s[i] = with[0];
        s[i + 1] = with[1];
        i++;
    }
}

/* Notes each line of text holding the marker, as "  rel:line: TODO(country)...". */
static void note_markers(struct new_ctx *x, const char *rel, const char *text, size_t len)
{
    unsigned line = 1;
    for (const char *p = text, *end = text + len; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *m = memmem(p, l, MARKER, strlen(MARKER));
        if (m) {
            size_t shown = l - (size_t)(m - p);
            char *item = NULL;
            int k =
                asprintf(&item, "  %s:%u: %.*s\n", rel, line, (int)(shown > 100 ? 100 : shown), m);
            char *grown = k > 0 ? realloc(x->marker_list, x->marker_len + (size_t)k + 1) : NULL;
            if (grown) {
                memcpy(grown + x->marker_len, item, (size_t)k + 1);
                x->marker_list = grown;
                x->marker_len += (size_t)k;
                x->markers++;
            }
            free(item);
        }
        p += l + 1;
    }
}

static int copy_file(struct new_ctx *x, const char *from, const char *to, const char *rel,
                     mode_t mode)
{
    char *data = NULL;
    size_t len = 0;
    if (ewtp_read_file(from, MAX_TEMPLATE_FILE, &data, &len) != 0 || len > MAX_TEMPLATE_FILE) {
        free(data);
        return ctl_usage_error("cannot read %s: %s", from, len ? "too large" : strerror(errno));
    }
    if (memchr(data, '\0', len) == NULL) { /* text: substitute; binary files stay as they are */
        substitute(data, len, x);
        note_markers(x, rel, data, len);
    }
    FILE *f = fopen(to, "wbx");
    bool ok = f && fwrite(data, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = false;
    free(data);
    if (!ok)
        return ctl_usage_error("cannot write %s: %s", to, strerror(errno));
    chmod(to, mode & 0777);
    x->files++;
    return 0;
}

/* Copies the folder from into to (which must not exist); rel is the path shown in messages. */
static int copy_tree(struct new_ctx *x, const char *from, const char *to, const char *rel, bool top)
{
    if (mkdir(to, 0755) != 0)
        return ctl_usage_error("cannot create %s: %s", to, strerror(errno));
    DIR *d = opendir(from);
    if (d == NULL)
        return ctl_usage_error("cannot read %s: %s", from, strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        /* dot files, and a build folder of someone who built the template in place */
        if (e->d_name[0] == '.' || (top && strncmp(e->d_name, "build", 5) == 0))
            continue;
        char name[NAME_MAX + 1];
        snprintf(name, sizeof(name), "%s", e->d_name);
        substitute(name, strlen(name), x);
        char *src = NULL, *dst = NULL, *r = NULL;
        if (asprintf(&src, "%s/%s", from, e->d_name) < 0 || asprintf(&dst, "%s/%s", to, name) < 0 ||
            asprintf(&r, "%s%s%s", rel, rel[0] ? "/" : "", name) < 0) {
            rc = ctl_usage_error("out of memory");
        } else {
            struct stat st;
            if (stat(src, &st) != 0)
                rc = ctl_usage_error("cannot read %s: %s", src, strerror(errno));
            else if (S_ISDIR(st.st_mode)) {
                bool was = x->in_vectors;
                x->in_vectors = was || (top && strcmp(name, "vectors") == 0);
                rc = copy_tree(x, src, dst, r, false);
                x->in_vectors = was;
            } else if (S_ISREG(st.st_mode))
                rc = copy_file(x, src, dst, r, st.st_mode);
        }
        free(src);
        free(dst);
        free(r);
    }
    closedir(d);
    return rc;
}

/* Removes what copy_tree made (only on failure; everything in it is ours). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = NULL;
        if (asprintf(&p, "%s/%s", path, e->d_name) > 0) {
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(p);
            else
                unlink(p);
        }
        free(p);
    }
    closedir(d);
    rmdir(path);
}

int ctl_plugin_new(int argc, char **argv)
{
    enum { OPT_DIR = 2000, OPT_TEMPLATE };
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, OPT_DIR},
        {"template", required_argument, NULL, OPT_TEMPLATE},
        {NULL, 0, NULL, 0},
    };
    static const char usage[] = "plugin new CC [--dir DIR] [--template DIR]";
    const char *dir = NULL, *template_dir = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == OPT_DIR)
            dir = optarg;
        else if (opt == OPT_TEMPLATE)
            template_dir = optarg;
        else
            return ctl_usage_error("%s", usage);
    }
    if (optind + 1 != argc)
        return ctl_usage_error("%s", usage);
    const char *code = argv[optind];
    struct new_ctx x = {0};
    if (strlen(code) != 2 || !isalpha((unsigned char)code[0]) || !isalpha((unsigned char)code[1]) ||
        !isascii(code[0]) || !isascii(code[1]))
        return ctl_usage_error("plugin new: \"%s\" is not a country code; give the two letters "
                               "of its ISO 3166-1 alpha-2 code, for example rw",
                               code);
    for (int i = 0; i < 2; i++) {
        x.lower[i] = (char)tolower((unsigned char)code[i]);
        x.upper[i] = (char)toupper((unsigned char)code[i]);
    }
    if (strcmp(x.lower, TEMPLATE_CODE) == 0)
        return ctl_usage_error("plugin new: zz is the template's own code; give your country's");
    char *fallback = NULL;
    if (dir == NULL) {
        if (!is_dir("plugins"))
            return ctl_usage_error("plugin new: there is no plugins/ folder here; run it at the "
                                   "top of an ewtp checkout, or give --dir DIR");
        if (asprintf(&fallback, "plugins/%s", x.lower) < 0)
            return ctl_usage_error("out of memory");
        dir = fallback;
    }
    struct stat st;
    if (lstat(dir, &st) == 0) {
        ctl_usage_error("plugin new: %s already exists; nothing was changed (remove it, or give "
                        "another --dir)",
                        dir);
        free(fallback);
        return 2;
    }
    char *tpl = find_template(template_dir);
    if (tpl == NULL) {
        ctl_usage_error("plugin new: %s%s; give the template folder with --template DIR",
                        template_dir ? "no folder " : "cannot find the plugin template",
                        template_dir ? template_dir : "");
        free(fallback);
        return 2;
    }
    char cml[PATH_MAX];
    snprintf(cml, sizeof(cml), "%s/CMakeLists.txt", tpl);
    int rc = 0;
    if (stat(cml, &st) != 0) {
        rc = ctl_usage_error("plugin new: %s is not a plugin template (no CMakeLists.txt)", tpl);
    } else {
        rc = copy_tree(&x, tpl, dir, "", true);
        if (rc != 0)
            remove_tree(dir);
    }
    if (rc == 0) {
        printf("created %s from %s (%u files): plugin \"%s\", destination %s, targets ewtp-%s and "
               "ewtp-sim-%s\n",
               dir, tpl, x.files, x.lower, x.upper, x.lower, x.lower);
        if (x.markers)
            printf("where your country's facts go (%u TODO(country) markers):\n%s", x.markers,
                   x.marker_list);
        printf("next: make build && build/bin/ewtpctl plugin check build/plugins/ewtp-%s.so "
               "--vectors %s/vectors\n",
               x.lower, dir);
    }
    free(x.marker_list);
    free(tpl);
    free(fallback);
    return rc;
}
