/* config.h — ewtpd's configuration (libconfig), parsed into one immutable object.
 *
 * ewtp_config_load() reads the file, checks every setting (types, ranges, references
 * between sections: routes name existing tenants and instances, listeners have their TLS
 * files, secrets are *file paths*, never inline values) and collects every problem as an
 * entry of `why` whose message starts with "FILE:LINE: " and names the setting
 * ("ewtpd.conf:42: tenants[1].token_file: cannot read /etc/ewtpd/t.token: No such file").
 * A configuration with any error is refused whole. The result is read-only afterwards and
 * may be shared by all threads; a reload builds a new one (gen.h). The struct bodies below
 * are the contract: read them, never write them.
 *
 * Every setting, its default and its meaning are documented in conf/ewtpd.conf.
 */
#ifndef EWTP_CONFIG_H
#define EWTP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/errors.h>
#include <ewtp/settings.h>

/* A certificate with its key configured beside the current one, taking over at a set time
 * (issue 18, certificate lifecycle): `next = { cert_file = ...; key_file = ...; from = "RFC
 * 3339"; }` in a listener, `client_next = { client_cert = ...; client_key = ...; from = ...; }`
 * in a plugin instance, `next = { key = ...; cert = ...; from = ...; }` in a key: the members
 * of the group are named as the ones they replace. Before from the current pair is used, from
 * then this one (certs.h; gen.c for signing keys). */
struct ewtp_cert_next {
    char *cert_file; /* resolved path */
    char *key_file;  /* resolved path (a secret file for client and signing keys) */
    int64_t from_ms; /* ms since the epoch */
};

struct ewtp_listener_conf {
    char *address;        /* "127.0.0.1", "::1", "0.0.0.0" */
    int port;             /* 0: ephemeral (tests; the bound port is logged and in status) */
    bool tls;             /* production listeners are TLS */
    char *cert_file;      /* PEM chain (tls) */
    char *key_file;       /* PEM key (tls) */
    char *client_ca_file; /* when set: client certificates requested and verified (mTLS) */
    bool admin;           /* serves only /livez /readyz /metrics */
    /* tls: the pair that takes over at next->from_ms; NULL: none. */
    struct ewtp_cert_next *next;
};

struct ewtp_tenant_conf {
    char *id;
    char *token_sha256;  /* hex SHA-256 of the bearer token read from token_file (the
                            token itself is not kept); NULL when the tenant uses mTLS */
    char *token_file;    /* where it came from, for messages */
    char *cert_subject;  /* client certificate subject (RFC 2253) that authenticates it */
    char *cert_ca_file;  /* PEM CA(s) that issue its client certificates (with cert_subject) */
    char **destinations; /* allowed destination countries ("*" = any) */
    size_t n_destinations;
    uint32_t kinds;            /* allowed kinds (EWTP_KIND_BIT); all when not set */
    char *webhook_url;         /* state changes are POSTed here; NULL: none */
    char *webhook_secret_file; /* Standard Webhooks secret ("whsec_..." base64) */
    /* The party codes the tenant may act as ("CN-CUSTOMS:3301960ABC": scheme, ':', value), each
     * held by one tenant only; none (n_parties 0): sender codes are not checked. */
    char **parties;
    size_t n_parties;
};

/* (Not "enum ewtp_transport": message.h has a struct of that tag.) */
enum ewtp_transport_kind {
    EWTP_TRANSPORT_HTTPS = 0,
    EWTP_TRANSPORT_SPOOL = 1,
    EWTP_TRANSPORT_AMQP = 2, /* AMQP 0-9-1 broker (amqp_transport.h) */
};

/* transport "amqp": where requests are published and receipts fetched (amqp_transport.h). */
struct ewtp_amqp_conf {
    char *url;                  /* "amqp://host:port/vhost" or amqps://; no password in it */
    char *credentials_file;     /* one line "user:password"; NULL: the URL's user, or guest */
    char *exchange;             /* "" (the default exchange) when not set */
    char *routing_key;          /* "" when not set (then exchange is required) */
    char *receipt_queue;        /* receipts are fetched from here; NULL: none over AMQP */
    char *content_type;         /* of published requests without one (default application/xml) */
    int heartbeat_s;            /* AMQP heartbeat (default 30; 0 off) */
    int64_t connect_timeout_ms; /* TCP + TLS + login (default 10 s) */
};

enum ewtp_auth_kind {
    EWTP_AUTH_NONE = 0,
    EWTP_AUTH_BEARER_FILE, /* a static token from a file */
    EWTP_AUTH_OAUTH2,      /* client credentials grant */
    EWTP_AUTH_JSON_LOGIN,  /* POST {user,password} JSON, token in the answer */
};

struct ewtp_auth_conf {
    enum ewtp_auth_kind kind;
    char *token_file;         /* bearer_file */
    char *token_url;          /* oauth2 / json_login: absolute URL */
    char *client_id;          /* oauth2 client id / json_login user */
    char *secret_file;        /* oauth2 client secret / json_login password */
    char *scope;              /* oauth2 */
    char *token_json_pointer; /* json_login: where the token is ("/token") */
    char *onbehalfof;         /* oauth2: "onbehalfof" header of the token request (MyInvois
                                 intermediaries: "TIN" or "TIN:BRN"); NULL: none */
};

/* One plugin instance: a plugin .so with its own settings and delivery path. */
struct ewtp_instance_conf {
    char *name;   /* unique: "cn-hangzhou" */
    char *plugin; /* descriptor name, file <plugin_dir>/ewtp-<plugin>.so unless file is set */
    char *file;   /* absolute path of the .so */
    struct ewtp_settings *settings; /* handed to create() */
    enum ewtp_transport_kind transport;
    char *endpoint;    /* https: base URL ("https://127.0.0.1:9443/api") */
    char *ca_file;     /* https: CA bundle to verify the authority (NULL: system store) */
    char *client_cert; /* https: client certificate (mTLS to the authority) */
    char *client_key;
    /* The client pair that takes over at its from_ms; NULL: none. */
    struct ewtp_cert_next *client_next;
    char *spool_out; /* spool: directory the documents are written into */
    char *spool_in;  /* receipts dropped here are handed to receive() */
    struct ewtp_auth_conf auth;
    char *inbound_token_file; /* POST /v1/inbound/<name> needs this bearer token */
    char *inbound_token_sha256;
    struct ewtp_amqp_conf amqp; /* transport "amqp" */
};

struct ewtp_route_conf {
    char *tenant;      /* tenant id or "*" */
    char *destination; /* country code or "*" */
    uint32_t kinds;    /* EWTP_KIND_BIT set; all when not given */
    char *instance;    /* instance name */
};

/* keys[].remote: a key held by an ewtp-signer agent (signer/README.md), used like a local key
 * from worker threads; its certificate is the key's cert. */
struct ewtp_key_remote_conf {
    char *url;         /* https://HOST:PORT */
    char *key;         /* the key's name at the agent */
    char *client_cert; /* resolved paths: our certificate and key (a secret), */
    char *client_key;
    char *ca_file;      /* and the CA the agent's certificate must chain to */
    int64_t timeout_ms; /* one signature, connect to answer (default 10 s) */
};

struct ewtp_key_conf {
    char *name;
    char *key_file, *cert_file; /* software key */
    char *command;              /* external signer (IC card / USB key) */
    /* A remote signer (ewtp-signer) instead of key or command; NULL: none. */
    struct ewtp_key_remote_conf *remote;
    /* Software key: the pair that takes over at its from_ms; NULL: none. */
    struct ewtp_cert_next *next;
};

struct ewtp_delivery_conf {
    unsigned max_attempts;      /* then dead (default 10) */
    int64_t max_age_ms;         /* or older than this since accept: dead (default 24 h) */
    int64_t base_delay_ms;      /* backoff base (default 1000) */
    int64_t max_delay_ms;       /* backoff cap (default 10 min) */
    int64_t request_timeout_ms; /* per request to an authority (default 30 s) */
    int64_t lease_ms;           /* a claim's lease (default 5 min) */
    int64_t poll_interval_ms;   /* receipts polling (default 30 s) */
    int64_t scan_interval_ms;   /* dispatcher and spool scans (default 200 ms) */
    unsigned workers;           /* translation/signing threads (default 8) */
    int nice;                   /* their nice value above the daemon's (default 10) */
    unsigned max_in_flight;     /* deliveries at once (default 64) */
    int64_t wait_timeout_ms;    /* a message waiting for another: rejected after (24 h) */
};

struct ewtp_limits_conf {
    size_t max_body_bytes;               /* default 1 MiB */
    size_t max_header_bytes;             /* default 16 KiB */
    int64_t timeout_ms;                  /* evhttp connection timeout (default 30 s) */
    int64_t header_timeout_ms;           /* slow-header guard (default 10 s) */
    unsigned max_connections;            /* default 1024 */
    unsigned max_connections_per_client; /* open at once from one address (default 64) */
    unsigned max_pending; /* accepts queued for the store before 503 (default 10000) */
};

struct ewtp_store_conf {
    char *backend;       /* "sqlite" (default) | "postgresql" */
    char *path;          /* sqlite file */
    char *conninfo_file; /* postgresql: file with the libpq conninfo (has the password) */
    unsigned pool_size;  /* postgresql: connections besides the writer's (default 4) */
};

struct ewtp_config {
    char *path;         /* the file loaded */
    char *plugin_dir;   /* default: the build tree's or the system's plugin directory */
    char *state_dir;    /* runtime files: plugin copies, (default /run/ewtpd or var/run) */
    char *admin_socket; /* Unix socket path for ewtpctl */
    struct ewtp_listener_conf *listeners;
    size_t n_listeners;
    struct ewtp_tenant_conf *tenants;
    size_t n_tenants;
    struct ewtp_instance_conf *instances;
    size_t n_instances;
    struct ewtp_route_conf *routes;
    size_t n_routes;
    struct ewtp_key_conf *keys;
    size_t n_keys;
    /* evidence = { key = "NAME"; retention_days = N; }; (issue 18): the key of keys that signs
     * evidence bundles (NULL: bundles are refused) and how long the bytes sent are kept. */
    struct {
        char *key;
        int64_t retention_days; /* default 400 */
    } evidence;
    struct ewtp_delivery_conf delivery;
    struct ewtp_limits_conf limits;
    struct ewtp_store_conf store;
    /* dev_mode = true; (only with every listener on loopback): short bearer tokens and secret
     * files readable by group or others are accepted; logged at start. It also serves /metrics
     * on the API listeners without a token (conf/dev.conf). */
    bool dev_mode;
    /* metrics_token_file (issue 19): /metrics is served on admin listeners; on API listeners
     * only to "Authorization: Bearer <this token>" (a secret file, checked like the tenants'
     * tokens), or in dev_mode. NULL: not on API listeners. */
    char *metrics_token_file;
    char *metrics_token_sha256; /* hex SHA-256 of the token */
};

/* 0 and a new configuration (caller frees), or -EWTP_EINVAL / -EWTP_EIO with every problem
 * in why. Relative paths in the file are resolved against the file's directory. */
int ewtp_config_load(const char *path, struct ewtp_config **out, struct ewtp_errors *why);

/* The plugin directory used when none is configured: build/plugins next to build/bin (a build
 * tree's binaries), else the system directory. *dir is malloc'd (caller frees); returns it. */
const char *ewtp_config_default_plugin_dir(char **dir);
void ewtp_config_free(struct ewtp_config *c);
/* Checks that every @include of the file (recursively) names a readable regular file, adding
 * "FILE:LINE: @include ..." to why otherwise: libconfig exits the process on some bad
 * includes, so call this before any config_read_file() of an untrusted edit. 0 or
 * -EWTP_EINVAL. */
int ewtp_config_check_includes(const char *path, struct ewtp_errors *why);

/* The client certificate and key of instance ic in use at now_ms: client_next's from its from
 * on, else client_cert / client_key (both NULL when the instance has none). Borrowed. */
void ewtp_instance_client_pair(const struct ewtp_instance_conf *ic, int64_t now_ms,
                               const char **cert_file, const char **key_file);

/* Lookups (NULL when absent). */
const struct ewtp_tenant_conf *ewtp_config_tenant(const struct ewtp_config *c, const char *id);
const struct ewtp_instance_conf *ewtp_config_instance(const struct ewtp_config *c,
                                                      const char *name);
/* The line in c->path of a list entry ("plugins[2]", "keys[0]", "tenants[1]", "routes[0]",
 * "listeners[0]") or of "state_dir" / "plugin_dir", so that problems found after loading
 * (keys, plugins: gen.c) still name file and line. 0 when unknown or not in the file. */
unsigned ewtp_config_line(const struct ewtp_config *c, const char *setting);

#endif
