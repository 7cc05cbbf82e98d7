/* amqp_url.c — AMQP URI and credentials-file parsing (no I/O). Contract in amqp_transport.h. */
#include "amqp_url.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ewtp/errors.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a new string; NULL on a bad escape, a NUL byte or OOM. */
static char *decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

void ewtp_amqp_url_clear(struct ewtp_amqp_url *u)
{
    if (u == NULL)
        return;
    free(u->user);
    free(u->host);
    free(u->vhost);
    memset(u, 0, sizeof(*u));
}

int ewtp_amqp_url_parse(const char *url, struct ewtp_amqp_url *u, const char **why)
{
    memset(u, 0, sizeof(*u));
    const char *p;
    if (url == NULL) {
        *why = "no URL";
        return -EWTP_EINVAL;
    }
    if (strncasecmp(url, "amqp://", 7) == 0) {
        p = url + 7;
    } else if (strncasecmp(url, "amqps://", 8) == 0) {
        u->tls = true;
        p = url + 8;
    } else {
        *why = "not an amqp:// or amqps:// URL";
        return -EWTP_EINVAL;
    }
    u->port = u->tls ? 5671 : 5672;
    size_t auth_len = strcspn(p, "/?#");
    const char *end = p + auth_len;
    if (strpbrk(p, "?#") != NULL) {
        *why = "query parameters and fragments are not supported (use the amqp settings)";
        return -EWTP_EINVAL;
    }
    const char *at = memchr(p, '@', auth_len);
    if (at != NULL) {
        if (memchr(p, ':', (size_t)(at - p)) != NULL) {
            *why = "a password in the URL: put \"user:password\" into credentials_file";
            return -EWTP_EINVAL;
        }
        if (at > p && (u->user = decode(p, (size_t)(at - p))) == NULL) {
            *why = "bad percent-encoding in the user name";
            goto fail;
        }
        p = at + 1;
    }
    const char *host_end;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close == NULL) {
            *why = "unclosed '[' in the host";
            goto fail;
        }
        u->host = strndup(p + 1, (size_t)(close - p - 1));
        host_end = close + 1;
        if (host_end < end && *host_end != ':') {
            *why = "unexpected characters after the IPv6 address";
            goto fail;
        }
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end == NULL)
            host_end = end;
        u->host = decode(p, (size_t)(host_end - p));
    }
    if (u->host == NULL || u->host[0] == '\0') {
        *why = "no host";
        goto fail;
    }
    if (host_end < end) { /* ":port" */
        const char *q = host_end + 1;
        long port = 0;
        if (q == end) {
            *why = "an empty port";
            goto fail;
        }
        for (; q < end; q++) {
            if (!isdigit((unsigned char)*q) || port > 65535) {
                *why = "the port is not a number from 1 to 65535";
                goto fail;
            }
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535) {
            *why = "the port is not a number from 1 to 65535";
            goto fail;
        }
        u->port = (int)port;
    }
    /* The vhost is the single path segment after the authority; "/" when none. */
    if (*end == '/' && end[1] != '\0') {
        if (strchr(end + 1, '/') != NULL) {
            *why = "the vhost is one path segment (write \"/\" inside it as %2f)";
            goto fail;
        }
        u->vhost = decode(end + 1, strlen(end + 1));
        if (u->vhost == NULL) {
            *why = "bad percent-encoding in the vhost";
            goto fail;
        }
    } else {
        u->vhost = strdup("/");
    }
    if (u->vhost == NULL) {
        *why = "out of memory";
        goto fail;
    }
    return 0;
fail:
    ewtp_amqp_url_clear(u);
    return -EWTP_EINVAL;
}

int ewtp_amqp_credentials_parse(const char *data, size_t len, char **user, char **password,
                                const char **why)
{
    *user = *password = NULL;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' ' ||
                       data[len - 1] == '\t'))
        len--;
    if (len == 0) {
        *why = "the file is empty: write \"user:password\" into it";
        return -EWTP_EINVAL;
    }
    if (memchr(data, '\n', len) != NULL || memchr(data, '\0', len) != NULL) {
        *why = "the file holds several lines: write \"user:password\" on one line";
        return -EWTP_EINVAL;
    }
    const char *colon = memchr(data, ':', len);
    if (colon == NULL || colon == data) {
        *why = "no \"user:password\" in the file";
        return -EWTP_EINVAL;
    }
    *user = strndup(data, (size_t)(colon - data));
    *password = strndup(colon + 1, len - (size_t)(colon + 1 - data));
    if (*user == NULL || *password == NULL) {
        free(*user);
        free(*password);
        *user = *password = NULL;
        *why = "out of memory";
        return -EWTP_ENOMEM;
    }
    return 0;
}
