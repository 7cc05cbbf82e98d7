/* signer_conf.h — ewtp-signer's configuration (libconfig), read once at start.
 *
 *   listen = "127.0.0.1:8790";            # address:port ([::1]:port for IPv6); port 0: any
 *   tls = { cert = "server.crt"; key = "server.key"; client_ca = "clients-ca.crt"; };
 *   limits = { max_request_bytes = 1048576; workers = 8; timeout_ms = 10000; };
 *   keys = (
 *     { name = "hsm-rsa"; clients = [ "CN=ewtpd-1", "sha256:<64 hex>" ];
 *       pkcs11 = { module = "/usr/lib/softhsm/libsofthsm2.so"; token = "ewtp";  # or slot = N
 *                  label = "rsa"; id = "01"; pin_file = "token.pin"; }; },
 *     { name = "cn-sm2"; clients = [ "CN=ewtpd-1" ]; key_file = "sm2.key"; },
 *     { name = "card"; clients = [ "CN=ewtpd-1" ]; command = "/usr/local/bin/card-sign";
 *       base64 = true; timeout_ms = 30000; }
 *   );
 *
 * Relative paths are taken from the configuration file's folder. Secrets (tls.key, key_file,
 * pin_file) must not be readable by group or others. A client is allowed a key when its
 * certificate (verified against tls.client_ca) has the subject CN of a "CN=..." entry or the
 * SHA-256 fingerprint (of its DER) of a "sha256:..." entry of that key's clients.
 */
#ifndef EWTP_SIGNER_CONF_H
#define EWTP_SIGNER_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum signer_key_source { SIGNER_KEY_PKCS11 = 1, SIGNER_KEY_FILE = 2, SIGNER_KEY_COMMAND = 3 };

struct signer_key_conf {
    char *name;
    enum signer_key_source source;
    char **clients; /* "CN=..." or "sha256:<lowercase hex>" */
    size_t n_clients;
    /* SIGNER_KEY_PKCS11 */
    char *module, *token, *label, *id_hex, *pin_file;
    long slot; /* -1 when the token is chosen by label */
    /* SIGNER_KEY_FILE */
    char *key_file;
    /* SIGNER_KEY_COMMAND */
    char *command;
    bool base64;
    int64_t timeout_ms;
};

struct signer_conf {
    char *path;
    char *listen_host; /* numeric address */
    unsigned listen_port;
    char *cert_file, *key_file, *client_ca_file;
    size_t max_request_bytes; /* default 1 MiB */
    unsigned workers;         /* connections served at once (default 8) */
    int64_t timeout_ms;       /* one connection, handshake to answer (default 10 s) */
    struct signer_key_conf *keys;
    size_t n_keys;
};

/* 0 and a new configuration (caller frees), or -1 with every problem written to stderr as
 * "FILE:LINE: setting: reason". */
int signer_conf_load(const char *path, struct signer_conf **out);
void signer_conf_free(struct signer_conf *c);
/* Reads a secret file (a PIN) whose mode must not give group or others any access: 0 and a
 * malloc'd NUL-terminated string without its trailing newline, or -1 with the reason in
 * *why (static text). */
int signer_read_secret(const char *path, char **out, const char **why);
/* True when path exists and no group/other permission bit is set. */
bool signer_secret_mode_ok(const char *path);

#endif
