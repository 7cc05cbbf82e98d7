/* amqp_url.h — the pure parsers of the "amqp" transport's settings: the broker's URI and its
 * credentials file. No I/O: config.c checks them when a configuration loads, and the
 * transport (transport/amqp_transport.c) uses them to connect.
 */
#ifndef EWTP_AMQP_URL_H
#define EWTP_AMQP_URL_H

#include <stdbool.h>
#include <stddef.h>

/* An AMQP URI (https://www.rabbitmq.com/docs/uri-spec): amqp[s]://[user@]host[:port][/vhost].
 * Everything malloc'd; free with ewtp_amqp_url_clear. */
struct ewtp_amqp_url {
    bool tls;    /* amqps */
    char *user;  /* percent-decoded; NULL when not in the URL */
    char *host;  /* without IPv6 brackets */
    int port;    /* default 5672, or 5671 for amqps */
    char *vhost; /* percent-decoded ("%2f" is "/"); "/" when absent */
};

/* 0 and *u, or -EWTP_EINVAL with *why (static text). A password in the URL is refused:
 * secrets come from files (credentials_file). */
int ewtp_amqp_url_parse(const char *url, struct ewtp_amqp_url *u, const char **why);
void ewtp_amqp_url_clear(struct ewtp_amqp_url *u);

/* A credentials file's content: "user:password" on one line (trailing newline and spaces
 * dropped; the password may contain ':'). 0 with *user and *password malloc'd, or
 * -EWTP_EINVAL with *why (static text). */
int ewtp_amqp_credentials_parse(const char *data, size_t len, char **user, char **password,
                                const char **why);

#endif
