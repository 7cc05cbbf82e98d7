/* transport_spool.c — requests written as files into the instance's spool_out directory, on
 * a worker: each one written to a hidden temporary, fsynced, renamed to the request's file
 * name and the directory synced, so that a file the other side sees is whole and survives a
 * crash. Written is handed over: the authority's answers come back as files (spool_in). */
#include "transport.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ewtp/errors.h>

static int write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char *tmp = ewtp_asprintf("%s/.%s.tmp", dir, name);
    char *dst = ewtp_asprintf("%s/%s", dir, name);
    int rc = -EWTP_EIO;
    int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640) : -1;
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
        if (rc == 0 && rename(tmp, dst) != 0)
            rc = -EWTP_EIO;
        if (rc != 0)
            unlink(tmp);
        int dfd = rc == 0 ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dfd >= 0) {
            fsync(dfd); /* the rename itself must survive a crash */
            close(dfd);
        }
    }
    free(tmp);
    free(dst);
    return rc;
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
