/* signer_server.c — TLS listener, client identities and the /v1/sign protocol (see
 * signer_server.h). Plain blocking sockets: a worker serves one short request at a time, and
 * each read and write waits at most what is left of the connection's time. */
#include "signer_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
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
#include <openssl/x509.h>

#include <ewtp/arena.h>
#include <ewtp/crypto.h>

#define HEAD_MAX 8192
#define LINGER_MS 1000
#define LINGER_BYTES (4u * 1024 * 1024)

struct signer_server {
    const struct signer_conf *conf;
    struct signer_keys *keys;
    SSL_CTX *tls;
    int listen_fd;
    int stop_pipe[2]; /* written once to wake every worker out of poll */
    unsigned port;
    pthread_t *threads;
    unsigned n_threads;
};

/* One connection being served. */
struct conn {
    struct signer_server *srv;
    int fd;
    SSL *ssl;
    int64_t deadline_ms;
    char cn[256];    /* the client certificate's subject CN ("" when it has none) */
    char sha256[65]; /* its fingerprint, lowercase hex */
    const char *key; /* for the log line */
    const char *alg;
    size_t data_len;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Socket timeouts set to what is left of the connection's time. False when nothing is left. */
static bool arm(struct conn *c)
{
    int64_t left = c->deadline_ms - now_ms();
    if (left <= 0)
        return false;
    struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return true;
}

static int tls_read(struct conn *c, void *buf, size_t len)
{
    if (!arm(c))
        return -1;
    size_t got = 0;
    int r = SSL_read_ex(c->ssl, buf, len, &got);
    return r == 1 ? (int)got : -1;
}

static bool tls_write(struct conn *c, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t w = 0;
        if (!arm(c) || SSL_write_ex(c->ssl, (const char *)buf + done, len - done, &w) != 1)
            return false;
        done += w;
    }
    return true;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 422:
        return "Unprocessable Content";
    case 502:
        return "Bad Gateway";
    }
    return "Internal Server Error";
}

static int respond_json(struct conn *c, int status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        status = 500;
    const char *t = text != NULL ? text : "{\"error\":\"internal\"}";
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                      "%zu\r\nConnection: close\r\n\r\n",
                      status, reason(status), strlen(t));
    if (tls_write(c, head, (size_t)hl))
        tls_write(c, t, strlen(t));
    free(text);
    return status;
}

static int respond_error(struct conn *c, int status, const char *code, const char *message)
{
    return respond_json(c, status, json_pack("{s:s,s:s}", "error", code, "message", message));
}

static bool client_allowed(const struct conn *c, const struct signer_key_conf *k)
{
    for (size_t i = 0; i < k->n_clients; i++) {
        const char *e = k->clients[i];
        if (strncmp(e, "CN=", 3) == 0 && c->cn[0] != '\0' && strcmp(e + 3, c->cn) == 0)
            return true;
        if (strncmp(e, "sha256:", 7) == 0 && strcmp(e + 7, c->sha256) == 0)
            return true;
    }
    return false;
}

static const struct signer_key_conf *key_conf(const struct signer_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->n_keys; i++)
        if (strcmp(conf->keys[i].name, name) == 0)
            return &conf->keys[i];
    return NULL;
}

static int handle_sign(struct conn *c, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *key = NULL, *alg = NULL, *data = NULL;
    size_t data_len = 0;
    if (req == NULL || json_unpack(req, "{s:s,s:s,s:s%}", "key", &key, "alg", &alg, "data", &data,
                                   &data_len) != 0) {
        json_decref(req);
        return respond_error(c, 400, "bad_request",
                             "the body must be {\"key\": NAME, \"alg\": ALG, \"data\": BASE64}");
    }
    c->key = key;
    c->alg = alg;
    int status;
    const struct signer_key_conf *kc = key_conf(c->srv->conf, key);
    if (kc == NULL || !client_allowed(c, kc)) {
        status = respond_error(c, 403, "forbidden",
                               "this client certificate may not use that key (or there is none)");
        goto out;
    }
    struct ewtp_arena *a = ewtp_arena_new();
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    if (a == NULL || ewtp_base64_decode(a, data, data_len, 0, &raw, &raw_len) != 0) {
        ewtp_arena_free(a);
        status = a == NULL ? respond_error(c, 500, "internal", "out of memory")
                           : respond_error(c, 400, "bad_request", "data is not Base64");
        goto out;
    }
    c->data_len = raw_len;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    const char *why = NULL;
    enum signer_sign_rc rc =
        signer_keys_sign(c->srv->keys, key, alg, raw, raw_len, &sig, &sig_len, &why);
    if (rc == SIGNER_SIGNED) {
        const char *b64 = ewtp_base64_encode(a, sig, sig_len);
        status =
            b64 != NULL
                ? respond_json(c, 200,
                               json_pack("{s:s,s:s,s:s}", "key", key, "alg", alg, "signature", b64))
                : respond_error(c, 500, "internal", "out of memory");
    } else if (rc == SIGNER_BAD_ALG) {
        status = respond_error(c, 422, "bad_alg", why);
    } else if (rc == SIGNER_NO_KEY) {
        status = respond_error(c, 403, "forbidden", "no such key");
    } else if (rc == SIGNER_SIGN_FAILED) {
        status = respond_error(c, 502, "sign_failed", why != NULL ? why : "signing failed");
    } else {
        status = respond_error(c, 500, "internal", "out of memory");
    }
    free(sig);
    ewtp_arena_free(a);
out:
    /* key and alg point into req: the log line is written before it goes. */
    fprintf(stderr, "ewtp-signer: client=\"%s\" POST /v1/sign key=%s alg=%s bytes=%zu status=%d\n",
            c->cn, key, alg, c->data_len, status);
    json_decref(req);
    return status;
}

static int handle_keys(struct conn *c)
{
    json_t *names = json_array();
    for (size_t i = 0; names != NULL && i < c->srv->conf->n_keys; i++)
        if (client_allowed(c, &c->srv->conf->keys[i]))
            json_array_append_new(names, json_string(c->srv->conf->keys[i].name));
    return respond_json(c, 200, json_pack("{s:o}", "keys", names));
}

/* The client's identity from its verified certificate. */
static bool identify(struct conn *c)
{
    X509 *x = SSL_get1_peer_certificate(c->ssl);
    if (x == NULL || SSL_get_verify_result(c->ssl) != X509_V_OK) {
        X509_free(x);
        return false;
    }
    c->cn[0] = '\0';
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, c->cn, sizeof(c->cn)) <
        0)
        c->cn[0] = '\0';
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    bool ok = X509_digest(x, EVP_sha256(), md, &n) == 1 && n == 32;
    for (unsigned i = 0; ok && i < n; i++)
        snprintf(c->sha256 + 2 * i, 3, "%02x", md[i]);
    X509_free(x);
    return ok;
}

/* The request: head (at most HEAD_MAX), then Content-Length bytes of body. */
static void serve(struct conn *c)
{
    const struct signer_conf *conf = c->srv->conf;
    char head[HEAD_MAX + 1];
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        if (got == HEAD_MAX) {
            respond_error(c, 400, "bad_request", "request head over 8 KiB");
            return;
        }
        int n = tls_read(c, head + got, HEAD_MAX - got);
        if (n <= 0)
            return;
        got += (size_t)n;
        head[got] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - head) + 4;
    char method[8] = "", path[64] = "";
    if (sscanf(head, "%7s %63s HTTP/1.%*1[01]\r", method, path) != 2) {
        respond_error(c, 400, "bad_request", "not an HTTP/1.x request");
        return;
    }
    /* Headers: Content-Length is required for a body; chunked bodies are not taken. */
    long long clen = -1;
    bool chunked = false;
    for (char *line = strstr(head, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Length:", 15) == 0) {
            char *e = NULL;
            clen = strtoll(line + 15, &e, 10);
            if (e == line + 15 || (*e != '\r' && *e != ' ') || clen < 0)
                clen = -2;
        } else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
            chunked = true;
        }
    }
    if (strcmp(path, "/v1/keys") == 0) {
        if (strcmp(method, "GET") != 0)
            respond_error(c, 405, "method_not_allowed", "GET /v1/keys");
        else
            handle_keys(c);
        return;
    }
    if (strcmp(path, "/v1/sign") != 0) {
        respond_error(c, 404, "not_found", "POST /v1/sign or GET /v1/keys");
        return;
    }
    if (strcmp(method, "POST") != 0) {
        respond_error(c, 405, "method_not_allowed", "POST /v1/sign");
        return;
    }
    if (chunked || clen < 0) {
        respond_error(c, clen == -2 ? 400 : 411, clen == -2 ? "bad_request" : "length_required",
                      "a body with Content-Length is required");
        return;
    }
    if ((unsigned long long)clen > conf->max_request_bytes) {
        respond_error(c, 413, "too_large", "the body is over limits.max_request_bytes");
        fprintf(stderr, "ewtp-signer: client=\"%s\" POST /v1/sign bytes=%lld status=413\n", c->cn,
                clen);
        return;
    }
    char *body = malloc((size_t)clen + 1);
    if (body == NULL) {
        respond_error(c, 500, "internal", "out of memory");
        return;
    }
    size_t have = got - head_len;
    if (have > (size_t)clen)
        have = (size_t)clen; /* one request per connection: anything after it is ignored */
    memcpy(body, head + head_len, have);
    while (have < (size_t)clen) {
        int n = tls_read(c, body + have, (size_t)clen - have);
        if (n <= 0) {
            free(body);
            return;
        }
        have += (size_t)n;
    }
    body[have] = '\0';
    handle_sign(c, body, have);
    free(body);
}

/* Half-closes and discards what the client still sends (a body refused with 413 before it was
 * read), for at most LINGER_MS and LINGER_BYTES: closing with unread input would reset the
 * connection, and the client could lose the answer. */
static void linger_close(struct conn *c)
{
    shutdown(c->fd, SHUT_WR);
    int64_t end = now_ms() + LINGER_MS;
    if (end > c->deadline_ms)
        end = c->deadline_ms;
    char buf[4096];
    for (size_t total = 0; total < LINGER_BYTES;) {
        int64_t left = end - now_ms();
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        if (left <= 0 || poll(&pf, 1, (int)left) != 1)
            return;
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            return;
        total += (size_t)n;
    }
}

static void serve_connection(struct signer_server *s, int fd)
{
    struct conn c = {.srv = s, .fd = fd, .deadline_ms = now_ms() + s->conf->timeout_ms};
    c.ssl = SSL_new(s->tls);
    if (c.ssl == NULL || SSL_set_fd(c.ssl, fd) != 1 || !arm(&c)) {
        SSL_free(c.ssl);
        return;
    }
    if (SSL_accept(c.ssl) != 1 || !identify(&c)) {
        unsigned long e = ERR_peek_last_error();
        char why[256] = "no client certificate";
        if (e != 0)
            ERR_error_string_n(e, why, sizeof(why));
        fprintf(stderr, "ewtp-signer: TLS handshake refused: %s\n", why);
        ERR_clear_error();
        SSL_free(c.ssl);
        return;
    }
    serve(&c);
    SSL_shutdown(c.ssl);
    SSL_free(c.ssl);
    ERR_clear_error();
    linger_close(&c);
}

static void *worker(void *arg)
{
    struct signer_server *s = arg;
    for (;;) {
        struct pollfd pf[2] = {{.fd = s->listen_fd, .events = POLLIN},
                               {.fd = s->stop_pipe[0], .events = POLLIN}};
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents != 0)
            break;
        if (!(pf[0].revents & POLLIN))
            continue;
        /* Non-blocking listen socket: another worker may have taken this connection. */
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve_connection(s, fd);
        close(fd);
    }
    return NULL;
}

static int setup_tls(struct signer_server *s)
{
    const struct signer_conf *conf = s->conf;
    SSL_CTX *t = SSL_CTX_new(TLS_server_method());
    s->tls = t;
    if (t == NULL || SSL_CTX_set_min_proto_version(t, TLS1_2_VERSION) != 1)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(t, conf->cert_file) != 1) {
        fprintf(stderr, "ewtp-signer: tls.cert %s: not a PEM certificate chain\n", conf->cert_file);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(t, conf->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(t) != 1) {
        fprintf(stderr, "ewtp-signer: tls.key %s: not the PEM key of tls.cert\n", conf->key_file);
        return -1;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->client_ca_file);
    if (SSL_CTX_load_verify_locations(t, conf->client_ca_file, NULL) != 1 || names == NULL) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        fprintf(stderr, "ewtp-signer: tls.client_ca %s: no PEM certificate\n",
                conf->client_ca_file);
        return -1;
    }
    SSL_CTX_set_client_CA_list(t, names);
    SSL_CTX_set_verify(t, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* No session resumption: every connection shows its certificate again. */
    SSL_CTX_set_session_cache_mode(t, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(t, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    return 0;
}

static int setup_listener(struct signer_server *s)
{
    const struct signer_conf *conf = s->conf;
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", conf->listen_port);
    int rc = getaddrinfo(conf->listen_host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "ewtp-signer: listen %s: %s\n", conf->listen_host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        fprintf(stderr, "ewtp-signer: listen %s:%u: %s\n", conf->listen_host, conf->listen_port,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    s->listen_fd = fd;
    return 0;
}

int signer_server_new(const struct signer_conf *conf, struct signer_keys *keys,
                      struct signer_server **out)
{
    *out = NULL;
    struct signer_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    s->conf = conf;
    s->keys = keys;
    s->listen_fd = s->stop_pipe[0] = s->stop_pipe[1] = -1;
    if (setup_tls(s) != 0 || pipe2(s->stop_pipe, O_CLOEXEC) != 0 || setup_listener(s) != 0) {
        ERR_clear_error();
        signer_server_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

unsigned signer_server_port(const struct signer_server *s)
{
    return s->port;
}

int signer_server_start(struct signer_server *s)
{
    s->threads = calloc(s->conf->workers, sizeof(*s->threads));
    if (s->threads == NULL)
        return -1;
    for (unsigned i = 0; i < s->conf->workers; i++) {
        if (pthread_create(&s->threads[i], NULL, worker, s) != 0)
            return -1;
        s->n_threads++;
    }
    return 0;
}

void signer_server_free(struct signer_server *s)
{
    if (s == NULL)
        return;
    if (s->stop_pipe[1] >= 0 && write(s->stop_pipe[1], "x", 1) < 0)
        fprintf(stderr, "ewtp-signer: cannot wake the workers: %s\n", strerror(errno));
    for (unsigned i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    free(s->threads);
    for (int i = 0; i < 2; i++)
        if (s->stop_pipe[i] >= 0)
            close(s->stop_pipe[i]);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    SSL_CTX_free(s->tls);
    free(s);
}
