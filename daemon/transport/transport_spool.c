/* transport_spool.c — requests written as files into the instance's spool_out directory, on
 * a worker: each one written to a hidden temporary, fsynced, renamed to the request's file
 * name and the directory synced, so that a file the other side sees is whole and survives a
 * crash. Written is handed over: the authority's answers come back as files (spool_in).
 * The directory's fsync after a rename is shared by the workers that renamed meanwhile
 * (groupsync.h): one per group of requests rather than one per request.
 * The folders are shared with the other side, who may plant links or FIFOs there: the
 * temporary gets a random name and is created with O_EXCL|O_NOFOLLOW, and ewtp_spool_read
 * opens in-folder files with O_NOFOLLOW|O_NONBLOCK and reads regular files only. */
#include "transport.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ewtp/errors.h>

#include "groupsync.h"

/* The out-folders' shared fsyncs: one per directory (device and inode), on a descriptor of
 * its own, kept for the process's life (one per spool_out ever configured). */
struct dir_sync {
    struct dir_sync *next;
    dev_t dev;
    ino_t ino;
    int fd;
    struct ewtp_groupsync g;
};
static pthread_mutex_t dir_syncs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dir_sync *dir_syncs;

static int dir_fsync(void *arg)
{
    const struct dir_sync *d = arg;
    return fsync(d->fd) == 0 ? 0 : -EWTP_EIO;
}

/* The directory dfd is open on: its shared sync, or NULL (out of memory, descriptors). */
static struct dir_sync *dir_sync_of(int dfd)
{
    struct stat st;
    if (fstat(dfd, &st) != 0)
        return NULL;
    pthread_mutex_lock(&dir_syncs_mu);
    struct dir_sync *d = dir_syncs;
    while (d && (d->dev != st.st_dev || d->ino != st.st_ino))
        d = d->next;
    if (d == NULL && (d = calloc(1, sizeof(*d))) != NULL) {
        d->fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
        if (d->fd < 0) {
            free(d);
            d = NULL;
        } else {
            d->dev = st.st_dev;
            d->ino = st.st_ino;
            ewtp_groupsync_init(&d->g, dir_fsync, d);
            d->next = dir_syncs;
            dir_syncs = d;
        }
    }
    pthread_mutex_unlock(&dir_syncs_mu);
    return d;
}

/* The rename into dfd made durable: through the directory's shared sync, or an fsync of its
 * own when there is none. */
static int sync_dir(int dfd)
{
    struct dir_sync *d = dir_sync_of(dfd);
    if (d == NULL)
        return fsync(dfd) == 0 ? 0 : -EWTP_EIO;
    return ewtp_groupsync_wait(&d->g, ewtp_groupsync_ticket(&d->g));
}

/* A hidden temporary name no other writer of the folder can guess: ".ewtp-<16 hex>.tmp". */
static void temp_name(char buf[32])
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = ewtp_rnd64();
    snprintf(buf, 32, ".ewtp-%016" PRIx64 ".tmp", r);
}

/* The folder is shared with the other side: the temporary is created, never reused
 * (O_EXCL), and never through a link planted there (O_NOFOLLOW); everything relative to the
 * directory opened once. */
static int write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -EWTP_EIO;
    char tmp[32];
    int fd = -1;
    for (int i = 0; i < 8 && fd < 0; i++) {
        temp_name(tmp);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    int rc = -EWTP_EIO;
    if (fd >= 0) {
        const char *p = data;
        size_t left = len;
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            p += w;
            left -= (size_t)w;
        }
        if (left == 0 && fsync(fd) == 0)
            rc = 0;
        if (close(fd) != 0)
            rc = -EWTP_EIO;
        if (rc == 0 && renameat(dfd, tmp, dfd, name) != 0)
            rc = -EWTP_EIO;
        if (rc != 0) {
            int e = errno;
            unlinkat(dfd, tmp, 0);
            errno = e;
        } else {
            rc = sync_dir(dfd); /* the rename itself must survive a crash */
        }
    }
    int e = errno;
    close(dfd);
    errno = e;
    return rc;
}

int ewtp_spool_read(int dirfd, const char *name, size_t max, char **data, size_t *len,
                    struct stat *sb, const char **why)
{
    *data = NULL;
    *len = 0;
    *why = NULL;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *why = errno == ELOOP ? "a symbolic link, not followed" : strerror(errno);
        return -EWTP_EIO;
    }
    int rc = -EWTP_EIO;
    if (fstat(fd, sb) != 0)
        *why = strerror(errno);
    else if (!S_ISREG(sb->st_mode))
        *why = "not a regular file";
    else if ((uint64_t)sb->st_size > max)
        *why = "too large";
    else
        rc = 0;
    size_t cap = rc == 0 ? (size_t)sb->st_size : 0, n = 0;
    char *buf = rc == 0 ? malloc(cap + 1) : NULL;
    if (rc == 0 && buf == NULL) {
        *why = "out of memory";
        rc = -EWTP_ENOMEM;
    }
    while (rc == 0 && n < cap) { /* the size fstat gave: what a writer adds later waits */
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            *why = strerror(errno);
            rc = -EWTP_EIO;
        }
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

/* A request path as a plain file name: no directories, no hidden or parent names. */
static const char *spool_name(struct ewtp_arena *a, const char *path)
{
    if (path == NULL)
        return NULL;
    while (*path == '/')
        path++;
    char *s = ewtp_arena_strdup(a, path);
    for (char *p = s; p && *p; p++)
        if (*p == '/' || *p == '\\')
            *p = '_';
    if (s == NULL || *s == '\0' || *s == '.')
        return NULL;
    return s;
}

/* Writes the request into spool_out as the file its path names (written, synced, renamed). */
static void spool_send(const struct ewtp_transport_env *env, const struct ewtp_transport_req *t,
                       ewtp_transport_done_fn done, void *arg)
{
    (void)env;
    const char *dir = t->ic->spool_out;
    if (dir == NULL) {
        done(arg, ewtp_transport_failure("the instance has no spool_out directory"));
        return;
    }
    mkdir(dir, 0750);
    const char *name = spool_name(t->arena, t->req->path);
    if (name == NULL) {
        done(arg, ewtp_transport_failure("the plugin gave a request path that is not a file name"));
        return;
    }
    if (write_atomic(dir, name, t->req->body, t->req->body_len) != 0) {
        char *why = ewtp_asprintf("cannot write %s/%s: %s", dir, name, strerror(errno));
        done(arg, ewtp_transport_failure(why ? why : "cannot write the spool file"));
        free(why);
        return;
    }
    struct ewtp_httpc_resp *ok = calloc(1, sizeof(*ok));
    if (ok)
        ok->status = 200;
    done(arg, ok);
}

const struct ewtp_transport_ops ewtp_transport_spool = {
    .name = "spool",
    .blocking = true,
    .answers = false,
    .handed_code = "spooled",
    .handed_message = "written to the spool directory",
    .send = spool_send,
};
