/* certs.h — every certificate the configuration names, and when each one expires (issue 18,
 * certificate lifecycle).
 *
 * Three uses: the TLS certificate of each listener, the client certificate of each plugin
 * instance (mTLS towards the authority or broker) and the certificate of each signing key
 * (the evidence key is one of them). Each may have a successor configured beside it
 * (config.h struct ewtp_cert_next: `next`, `client_next`) that takes over at its `from` time:
 * before from the current one is in use, from then on the successor. Nothing restarts for
 * that: a listener's handshakes pick the pair by time (ewtp_certs_use_listener), so does each
 * request to an authority (ewtp_instance_client_pair, config.h), and signing keys switch with
 * the generation (gen.c resolves them at build time; a timer rebuilds it at from, certwatch.h).
 *
 * ewtp_certs_load() runs where a generation is built (off the event loop): it reads every
 * certificate (notAfter, SHA-256 fingerprint, serial, subject), checks that each successor
 * and each listener's or client's current certificate matches its private key, and keeps the
 * listeners' chains and keys in memory so that a handshake reads no file. Problems are
 * reported as "FILE:LINE: setting: reason" (listeners[0].next.key_file: does not match ...).
 *
 * Expiry: seconds until notAfter, negative once expired; a certificate is warned about when
 * it is within 30, 7 and 1 days of its notAfter (ewtp_cert_alerts: once per threshold crossed)
 * and an error once expired. A current certificate whose successor takes over before (or
 * when) it expires is not warned about: it is on its way out.
 *
 * Threads: a loaded set is immutable and may be read from any thread; it lives as long as the
 * generation holding it. ewtp_cert_alerts is single-threaded (the loop's timer).
 */
#ifndef EWTP_CERTS_H
#define EWTP_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <ewtp/errors.h>

#include "config.h"

struct ssl_st; /* OpenSSL's SSL */
struct ewtp_certs;

enum ewtp_cert_use {
    EWTP_CERT_TLS = 0,     /* a listener's server certificate */
    EWTP_CERT_CLIENT = 1,  /* an instance's client certificate (mTLS to an authority) */
    EWTP_CERT_SIGNING = 2, /* a signing key's certificate */
};

/* How close a certificate is to its notAfter. Ordered: a higher level is more urgent. */
enum ewtp_cert_level {
    EWTP_CERT_FINE = 0,    /* more than 30 days left */
    EWTP_CERT_30_DAYS = 1, /* 30 days or less */
    EWTP_CERT_7_DAYS = 2,  /* 7 days or less */
    EWTP_CERT_1_DAY = 3,   /* 1 day or less */
    EWTP_CERT_EXPIRED = 4, /* notAfter has passed */
};

/* One configured certificate. Strings are borrowed while the set lives. */
struct ewtp_cert_info {
    enum ewtp_cert_use use;
    const char *name;    /* "listeners[0]", the instance's name, the key's name */
    const char *setting; /* where it is configured: "listeners[0].next.cert_file" */
    const char *file;    /* the PEM file */
    const char *subject; /* RFC 2253 */
    const char *serial;  /* hex, upper case */
    char sha256[65];     /* fingerprint: SHA-256 of the DER, lower-case hex */
    int64_t not_before_ms, not_after_ms;
    bool next;       /* a successor (configured in next / client_next) */
    int64_t from_ms; /* next: when it takes over; current: when its successor does (0: never) */
};

/* hex ("ab12...") as upper-case byte pairs joined by ':' ("AB:12:..."), as `openssl x509
 * -fingerprint -sha256` prints a fingerprint; used in log lines and `ewtpd -t` (a bare run of
 * hex digits would be masked by the log's redaction of identifiers). buf of 3 * strlen(hex) / 2
 * + 1 bytes at least (96 for a SHA-256); returns buf. */
const char *ewtp_cert_colon_hex(const char *hex, char *buf, size_t size);

/* "tls", "client", "signing". */
const char *ewtp_cert_use_name(enum ewtp_cert_use use);

/* Reads every certificate of c (see above). now_ms is the build time: signing keys were
 * resolved for it (ewtp_certs_stale). 0 and *out (caller frees), or -EWTP_EINVAL / -EWTP_EIO /
 * -EWTP_ENOMEM with every problem in why. */
int ewtp_certs_load(const struct ewtp_config *c, int64_t now_ms, struct ewtp_certs **out,
                    struct ewtp_errors *why);
void ewtp_certs_free(struct ewtp_certs *s); /* NULL is a no-op */

size_t ewtp_certs_count(const struct ewtp_certs *s);
const struct ewtp_cert_info *ewtp_certs_at(const struct ewtp_certs *s, size_t i);

/* Whether ci is (or is going to be) used at now_ms: a current certificate until its
 * successor's from, a successor always (before its from it is waiting). */
bool ewtp_cert_configured_in_use(const struct ewtp_cert_info *ci, int64_t now_ms);
/* Whether ci is the one used right now (current before from, successor from then on). */
bool ewtp_cert_active(const struct ewtp_cert_info *ci, int64_t now_ms);
/* Seconds until notAfter (negative when expired), rounded towards minus infinity. */
int64_t ewtp_cert_seconds_left(const struct ewtp_cert_info *ci, int64_t now_ms);
/* The level of a certificate with seconds_left seconds to go. */
enum ewtp_cert_level ewtp_cert_level_of(int64_t seconds_left);

/* The earliest from (successor takes over) after after_ms, or 0 when none. */
int64_t ewtp_certs_next_switch_ms(const struct ewtp_certs *s, int64_t after_ms);
/* True when a signing key's successor took over after the set was loaded and by now_ms: the
 * generation still signs with the old key and needs rebuilding (certwatch.h). */
bool ewtp_certs_signing_stale(const struct ewtp_certs *s, int64_t now_ms);

/* Gives ssl the certificate chain and key of listener i in use at now_ms (a TLS server
 * handshake's certificate callback, on the loop). 0, -EWTP_ENOTFOUND when listener i has no
 * TLS pair in this set, -EWTP_ECRYPTO when OpenSSL refuses. */
int ewtp_certs_use_listener(const struct ewtp_certs *s, size_t i, int64_t now_ms,
                            struct ssl_st *ssl);

/* The Prometheus text of ewtp_certificate_expiry_seconds{use,name,slot,serial,fingerprint}
 * (HELP and TYPE lines first) for every certificate configured_in_use at now_ms. */
void ewtp_certs_write_metrics(const struct ewtp_certs *s, int64_t now_ms, FILE *f);
/* One line per certificate for `ewtpd -t`: use, name, subject, fingerprint, notAfter and
 * the time left, and for a successor when it takes over. */
void ewtp_certs_print(const struct ewtp_certs *s, int64_t now_ms, FILE *f);

/* ---- warnings: once per threshold crossed ------------------------------------------------- */

struct ewtp_cert_alerts;

/* Receives one line to log: priority is syslog's (LOG_WARNING for 30/7/1 days, LOG_ERR when
 * expired). */
typedef void (*ewtp_cert_say_fn)(void *arg, int priority, const char *line);

struct ewtp_cert_alerts *ewtp_cert_alerts_new(void); /* NULL when out of memory */
void ewtp_cert_alerts_free(struct ewtp_cert_alerts *a);
/* Checks each certificate of s in use at now_ms against what was already said about it
 * (keyed by use, name and fingerprint) and says each level reached since: a certificate found
 * at 5 days left is said once (7 days), again at 1 day and when expired. A certificate no
 * longer configured is forgotten. Returns the number of lines said. */
size_t ewtp_cert_alerts_check(struct ewtp_cert_alerts *a, const struct ewtp_certs *s,
                              int64_t now_ms, ewtp_cert_say_fn say, void *arg);

#endif
