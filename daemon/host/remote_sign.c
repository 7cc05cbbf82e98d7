/* remote_sign.c — blocking mTLS client of ewtp-signer (see remote_sign.h). */
#include "remote_sign.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <ewtp/crypto.h>

#define DEFAULT_TIMEOUT_MS 10000
#define ANSWER_MAX (256 * 1024) /* a signature is a few hundred bytes; errors a sentence */

struct ewtp_remote_signer {
    SSL_CTX *tls;
    char *host; /* without brackets */
    char *port;
    char *path; /* prefix + "/v1/sign" */
    char *key;
    bool host_is_ip;
    int64_t timeout_ms;
};

static int fail(struct ewtp_errors *errs, int rc, const char *fmt, const char *a1)
{
    if (errs != NULL)
        ewtp_errors_add(errs, "", "key", fmt, a1);
    return rc;
}

void ewtp_remote_signer_free(struct ewtp_remote_signer *r)
{
    if (r == NULL)
        return;
    SSL_CTX_free(r->tls);
    free(r->host);
    free(r->port);
    free(r->path);
    free(r->key);
    free(r);
}

/* https://host[:port][/prefix] -> host, port (default 443), path prefix + /v1/sign. */
static int parse_url(struct ewtp_remote_signer *r, const char *url)
{
    if (strncmp(url, "https://", 8) != 0)
        return -EWTP_EINVAL;
    const char *h = url + 8, *he, *rest;
    if (*h == '[') {
        he = strchr(h, ']');
        if (he == NULL)
            return -EWTP_EINVAL;
        rest = he + 1;
        h++;
    } else {
        he = h + strcspn(h, ":/");
        rest = he;
    }
    if (he == h)
        return -EWTP_EINVAL;
    const char *pe = rest;
    if (*rest == ':') {
        pe = rest + 1 + strspn(rest + 1, "0123456789");
        if (pe == rest + 1 || (*pe != '\0' && *pe != '/'))
            return -EWTP_EINVAL;
        r->port = strndup(rest + 1, (size_t)(pe - rest - 1));
    } else if (*rest != '\0' && *rest != '/') {
        return -EWTP_EINVAL;
    } else {
        r->port = strdup("443");
    }
    r->host = strndup(h, (size_t)(he - h));
    size_t plen = strlen(pe);
    while (plen > 0 && pe[plen - 1] == '/')
        plen--;
    if (asprintf(&r->path, "%.*s/v1/sign", (int)plen, pe) < 0)
        r->path = NULL;
    if (r->host == NULL || r->port == NULL || r->path == NULL)
        return -EWTP_ENOMEM;
    unsigned char buf[16];
    r->host_is_ip = inet_pton(AF_INET, r->host, buf) == 1 || inet_pton(AF_INET6, r->host, buf) == 1;
    return 0;
}

int ewtp_remote_signer_new(const struct ewtp_remote_conf *conf, struct ewtp_remote_signer **out,
                           struct ewtp_errors *errs)
{
    *out = NULL;
    if (conf->url == NULL || conf->key == NULL || conf->key[0] == '\0' ||
        conf->client_cert == NULL || conf->client_key == NULL || conf->ca_file == NULL)
        return fail(errs, -EWTP_EINVAL,
                    "remote needs url, key, client_cert, client_key and ca_file%s", "");
    struct ewtp_remote_signer *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -EWTP_ENOMEM;
    r->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : DEFAULT_TIMEOUT_MS;
    r->key = strdup(conf->key);
    int rc = r->key == NULL ? -EWTP_ENOMEM : parse_url(r, conf->url);
    if (rc == -EWTP_EINVAL)
        fail(errs, rc, "remote url %s: must be https://HOST:PORT", conf->url);
    if (rc < 0)
        goto out;
    rc = -EWTP_ECRYPTO;
    r->tls = SSL_CTX_new(TLS_client_method());
    if (r->tls == NULL || SSL_CTX_set_min_proto_version(r->tls, TLS1_2_VERSION) != 1)
        goto out;
    if (SSL_CTX_load_verify_locations(r->tls, conf->ca_file, NULL) != 1) {
        fail(errs, rc, "remote ca_file %s: no PEM certificate to verify the signer with",
             conf->ca_file);
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(r->tls, conf->client_cert) != 1) {
        fail(errs, rc, "remote client_cert %s: not a PEM certificate", conf->client_cert);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(r->tls, conf->client_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(r->tls) != 1) {
        fail(errs, rc, "remote client_key %s: not the PEM key of client_cert", conf->client_key);
        goto out;
    }
    SSL_CTX_set_verify(r->tls, SSL_VERIFY_PEER, NULL);
    rc = 0;
out:
    ERR_clear_error();
    if (rc < 0) {
        ewtp_remote_signer_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- one exchange ---- */

struct xfer {
    int fd;
    SSL *ssl;
    int64_t deadline;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Socket timeouts: what is left of the exchange's time. False when nothing is. */
static bool arm(struct xfer *x)
{
    int64_t left = x->deadline - now_ms();
    if (left <= 0)
        return false;
    struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
    setsockopt(x->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(x->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return true;
}

/* A connected blocking socket to host:port within the deadline, or -1. */
static int connect_by(const struct ewtp_remote_signer *r, int64_t deadline)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(r->host, r->port, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *p = ai; p != NULL && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        int rc = connect(fd, p->ai_addr, p->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            int64_t left = deadline - now_ms();
            int err = 0;
            socklen_t el = sizeof(err);
            rc = left > 0 && poll(&pf, 1, (int)left) == 1 &&
                         getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0
                     ? 0
                     : -1;
        }
        if (rc != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static bool send_all(struct xfer *x, const char *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t w = 0;
        if (!arm(x) || SSL_write_ex(x->ssl, buf + done, len - done, &w) != 1)
            return false;
        done += w;
    }
    return true;
}

/* The answer up to the agent's close (it answers with Connection: close), at most ANSWER_MAX
 * bytes. The length read, or -1. */
static long read_all(struct xfer *x, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        size_t n = 0;
        if (!arm(x))
            return -1;
        if (SSL_read_ex(x->ssl, buf + got, cap - got, &n) != 1) {
            int e = SSL_get_error(x->ssl, 0);
            /* A close without close_notify still ends a Content-Length answer we check. */
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0) ||
                (e == SSL_ERROR_SSL &&
                 ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
                break;
            return -1;
        }
        got += n;
    }
    buf[got] = '\0';
    return (long)got;
}

/* Status and body of an HTTP/1.1 answer held whole in buf. */
static int parse_answer(char *buf, size_t len, int *status, const char **body, size_t *body_len)
{
    char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL || sscanf(buf, "HTTP/1.%*1[01] %3d", status) != 1)
        return -1;
    *body = end + 4;
    *body_len = len - (size_t)(end + 4 - buf);
    for (char *l = strstr(buf, "\r\n") + 2; l < end; l = strstr(l, "\r\n") + 2)
        if (strncasecmp(l, "Content-Length:", 15) == 0) {
            long long cl = strtoll(l + 15, NULL, 10);
            if (cl < 0 || (unsigned long long)cl > *body_len)
                return -1; /* cut short */
            *body_len = (size_t)cl;
        }
    return 0;
}

int ewtp_remote_sign(struct ewtp_remote_signer *r, const char *alg, const void *data, size_t len,
                     struct ewtp_arena *a, const unsigned char **sig, size_t *sig_len, char *why,
                     size_t why_size)
{
    snprintf(why, why_size, "out of memory");
    /* A signer that closes mid-request gives EPIPE, not a SIGPIPE that would end ewtpctl. */
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    struct xfer x = {.fd = -1, .deadline = now_ms() + r->timeout_ms};
    char *req_body = NULL, *head = NULL, *answer = NULL;
    json_t *ans = NULL;
    int rc = -EWTP_ENOMEM;
    const char *b64 = ewtp_base64_encode(a, data, len);
    json_t *j = b64 ? json_pack("{s:s,s:s,s:s}", "key", r->key, "alg", alg, "data", b64) : NULL;
    req_body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    answer = malloc(ANSWER_MAX + 1);
    if (req_body == NULL || answer == NULL ||
        asprintf(&head,
                 "POST %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 r->path, strchr(r->host, ':') ? "[" : "", r->host, strchr(r->host, ':') ? "]" : "",
                 r->port, strlen(req_body)) < 0) {
        head = NULL;
        goto out;
    }
    rc = -EWTP_ECRYPTO;
    x.fd = connect_by(r, x.deadline);
    if (x.fd < 0) {
        snprintf(why, why_size, "cannot connect to %s:%s", r->host, r->port);
        goto out;
    }
    x.ssl = SSL_new(r->tls);
    if (x.ssl == NULL || SSL_set_fd(x.ssl, x.fd) != 1)
        goto out;
    /* The agent's certificate must name the host we asked for. */
    if (r->host_is_ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(x.ssl), r->host) != 1)
            goto out;
    } else if (SSL_set_tlsext_host_name(x.ssl, r->host) != 1 ||
               SSL_set1_host(x.ssl, r->host) != 1) {
        goto out;
    }
    if (!arm(&x) || SSL_connect(x.ssl) != 1) {
        long v = SSL_get_verify_result(x.ssl);
        snprintf(why, why_size, "TLS handshake with %s:%s failed%s%s", r->host, r->port,
                 v != X509_V_OK ? ": " : " (our client certificate refused, or a timeout)",
                 v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
        goto out;
    }
    if (!send_all(&x, head, strlen(head)) || !send_all(&x, req_body, strlen(req_body))) {
        snprintf(why, why_size, "sending to %s:%s failed or timed out", r->host, r->port);
        goto out;
    }
    long n = read_all(&x, answer, ANSWER_MAX);
    int status = 0;
    const char *body = NULL;
    size_t body_len = 0;
    if (n < 0 || parse_answer(answer, (size_t)n, &status, &body, &body_len) != 0) {
        snprintf(why, why_size, "no complete answer from %s:%s (timeout or cut)", r->host, r->port);
        goto out;
    }
    ans = json_loadb(body, body_len, 0, NULL);
    const char *sig_b64 = NULL, *err = NULL, *msg = NULL;
    if (status != 200) {
        json_unpack(ans, "{s?s,s?s}", "error", &err, "message", &msg);
        snprintf(why, why_size, "the signer answered %d %s%s%s", status, err ? err : "",
                 msg ? ": " : "", msg ? msg : "");
        goto out;
    }
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    if (json_unpack(ans, "{s:s}", "signature", &sig_b64) != 0 ||
        ewtp_base64_decode(a, sig_b64, strlen(sig_b64), 0, &raw, &raw_len) != 0 || raw_len == 0) {
        snprintf(why, why_size, "the signer's answer holds no Base64 signature");
        goto out;
    }
    *sig = raw;
    *sig_len = raw_len;
    why[0] = '\0';
    rc = 0;
out:
    if (x.ssl != NULL) {
        if (rc == 0)
            SSL_shutdown(x.ssl);
        SSL_free(x.ssl);
    }
    if (x.fd >= 0)
        close(x.fd);
    ERR_clear_error();
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
        ;
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    json_decref(ans);
    free(req_body);
    free(head);
    free(answer);
    return rc;
}
