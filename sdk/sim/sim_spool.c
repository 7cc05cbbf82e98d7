/* libewtp-sim spool folders: the atomic writer, the safe reader and the scan of an
 * out-folder. Every file is opened relative to its folder's descriptor (openat) with
 * O_NOFOLLOW, so a link planted in a spool folder is never followed. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim_internal.h"

/* A name a spool folder may hold: not empty, no '/', not a hidden (temporary) name. */
static bool name_ok(const char *name)
{
    return name && name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EWTP_EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ewtp_sim_spool_write(struct ewtp_sim *sim, const char *dir, const char *name, const void *data,
                         size_t len)
{
    static unsigned long serial;
    if (dir == NULL || !name_ok(name) || strlen(name) > 200)
        return -EWTP_EINVAL;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        ewtp_sim_log(sim, EWTP_LOG_ERR, "spool: cannot open %s: %s", dir, strerror(errno));
        return -EWTP_EIO;
    }
    /* A fresh temporary name: O_EXCL never reuses (or follows) what is already there. */
    char tmp[256];
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0; i++) {
        snprintf(tmp, sizeof(tmp), ".%s.%ld.%lu.tmp", name, (long)getpid(), ++serial);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        ewtp_sim_log(sim, EWTP_LOG_ERR, "spool: cannot create %s/%s: %s", dir, tmp,
                     strerror(errno));
        close(dfd);
        return -EWTP_EIO;
    }
    int rc = write_all(fd, data, len) == 0 && fsync(fd) == 0 ? 0 : -EWTP_EIO;
    if (close(fd) != 0)
        rc = -EWTP_EIO;
    if (rc == 0 && renameat(dfd, tmp, dfd, name) != 0)
        rc = -EWTP_EIO;
    if (rc != 0) {
        ewtp_sim_log(sim, EWTP_LOG_ERR, "spool: cannot write %s/%s: %s", dir, name,
                     strerror(errno));
        unlinkat(dfd, tmp, 0);
        close(dfd);
        return rc;
    }
    /* The rename is durable only once the folder itself is synced. */
    fsync(dfd);
    close(dfd);
    return 0;
}

/* Reads name relative to dfd into the arena. */
static int read_at(int dfd, const char *name, size_t max, struct ewtp_arena *a, char **data,
                   size_t *len)
{
    if (!name_ok(name))
        return -EWTP_EINVAL;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? -EWTP_EINVAL : -EWTP_EIO;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > max) {
        close(fd);
        return -EWTP_EINVAL;
    }
    size_t size = (size_t)sb.st_size, n = 0;
    char *buf = ewtp_arena_alloc(a, size + 1);
    if (buf == NULL) {
        close(fd);
        return -EWTP_ENOMEM;
    }
    /* A file that grows while read is cut at its size when opened. */
    while (n < size) {
        ssize_t r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int ewtp_sim_spool_read(const char *dir, const char *name, size_t max, struct ewtp_arena *a,
                        char **data, size_t *len)
{
    int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd < 0)
        return -EWTP_EIO;
    int rc = read_at(dfd, name, max, a, data, len);
    close(dfd);
    return rc;
}

int ewtp_sim_spool_scan(struct ewtp_sim *sim, const char *dir, size_t max_files, size_t max_size,
                        ewtp_sim_spool_fn fn, void *arg)
{
    int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd < 0)
        return -EWTP_EIO;
    int cfd = dup(dfd);
    DIR *d = cfd >= 0 ? fdopendir(cfd) : NULL;
    if (d == NULL) {
        if (cfd >= 0)
            close(cfd);
        close(dfd);
        return -EWTP_EIO;
    }
    /* Names first, then the work: renaming while reading the directory may repeat entries. */
    char **names = calloc(max_files ? max_files : 1, sizeof(*names));
    size_t n = 0;
    struct dirent *e;
    while (names && n < max_files && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ".x.tmp" files are still being written (atomic spool writes) */
        struct stat sb;
        if (fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            !(S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode)))
            continue; /* sent/ and other folders */
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
    }
    closedir(d);
    int taken = 0;
    bool sent_made = false;
    for (size_t i = 0; i < n; i++) {
        struct ewtp_arena *a = ewtp_arena_new();
        char *data = NULL;
        size_t len = 0;
        int rc = a ? read_at(dfd, names[i], max_size, a, &data, &len) : -EWTP_ENOMEM;
        if (rc == 0)
            fn(arg, names[i], data, len, a);
        else
            ewtp_sim_log(sim, EWTP_LOG_WARNING, "cannot read %s/%s%s", dir, names[i],
                         rc == -EWTP_EINVAL ? " (a link, or larger than allowed)" : "");
        if (!sent_made) {
            mkdirat(dfd, "sent", 0750);
            sent_made = true;
        }
        char to[300];
        snprintf(to, sizeof(to), "sent/%s", names[i]);
        if (renameat(dfd, names[i], dfd, to) != 0) {
            ewtp_sim_log(sim, EWTP_LOG_ERR, "cannot move %s/%s to %s/sent: %s", dir, names[i], dir,
                         strerror(errno));
            unlinkat(dfd, names[i], 0); /* never take the same file twice */
        }
        taken++;
        ewtp_arena_free(a);
        free(names[i]);
    }
    free(names);
    close(dfd);
    return taken;
}

struct ewtp_sim_spool_watch {
    struct ewtp_sim *sim;
    char *dir;
    int64_t poll_ms;
    size_t max_files, max_size;
    ewtp_sim_spool_fn fn;
    void *arg;
    struct ewtp_sim_timer *timer;
};

static void watch_fire(struct ewtp_sim *sim, void *arg)
{
    struct ewtp_sim_spool_watch *w = arg;
    w->timer = NULL;
    ewtp_sim_spool_scan(sim, w->dir, w->max_files, w->max_size, w->fn, w->arg);
    /* fn may have unwatched nothing (it gets no handle): w is still ours to re-arm. */
    w->timer = ewtp_sim_timer_add(sim, w->poll_ms, watch_fire, w);
    if (w->timer == NULL)
        ewtp_sim_log(sim, EWTP_LOG_ERR, "spool: %s is no longer watched (out of memory)", w->dir);
}

struct ewtp_sim_spool_watch *ewtp_sim_spool_watch(struct ewtp_sim *sim, const char *dir,
                                                  int64_t poll_ms, size_t max_files,
                                                  size_t max_size, ewtp_sim_spool_fn fn, void *arg)
{
    if (dir == NULL || fn == NULL)
        return NULL;
    struct ewtp_sim_spool_watch *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->dir = strdup(dir)) == NULL) {
        free(w);
        return NULL;
    }
    *w = (struct ewtp_sim_spool_watch){.sim = sim,
                                       .dir = w->dir,
                                       .poll_ms = poll_ms,
                                       .max_files = max_files,
                                       .max_size = max_size,
                                       .fn = fn,
                                       .arg = arg};
    w->timer = ewtp_sim_timer_add(sim, poll_ms, watch_fire, w);
    if (w->timer == NULL) {
        free(w->dir);
        free(w);
        return NULL;
    }
    return w;
}

void ewtp_sim_spool_unwatch(struct ewtp_sim_spool_watch *w)
{
    if (w == NULL)
        return;
    ewtp_sim_timer_cancel(w->sim, w->timer);
    free(w->dir);
    free(w);
}
