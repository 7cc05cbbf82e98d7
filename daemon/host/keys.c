/* keys.c — the host's key store (see keys.h). */
#include "keys.h"
#include "remote_sign.h"

#include <ewtp/crypto.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

extern char **environ;

#define SM2_ID "1234567812345678"
#define CMD_MAX_OUTPUT (64 * 1024)
#define CMD_DEFAULT_TIMEOUT_MS 30000

enum key_kind { KIND_SOFT, KIND_COMMAND, KIND_REMOTE };

struct key {
    struct key *next;
    char *name;
    enum key_kind kind;
    bool test;
    EVP_PKEY *pkey; /* KIND_SOFT */
    enum ewtp_key_family family;
    unsigned char *cert; /* DER, may be NULL for a command without certificate */
    size_t cert_len;
    char *command; /* KIND_COMMAND */
    int64_t timeout_ms;
    unsigned flags;
    struct ewtp_remote_signer *remote; /* KIND_REMOTE */
};

struct ewtp_keys {
    pthread_mutex_t lock;
    struct key *keys;
    bool auto_test;
};

struct ewtp_keys *ewtp_keys_new(void)
{
    struct ewtp_keys *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    if (pthread_mutex_init(&k->lock, NULL) != 0) {
        free(k);
        return NULL;
    }
    return k;
}

static void key_free(struct key *e)
{
    if (e == NULL)
        return;
    free(e->name);
    EVP_PKEY_free(e->pkey);
    free(e->cert);
    free(e->command);
    ewtp_remote_signer_free(e->remote);
    free(e);
}

void ewtp_keys_free(struct ewtp_keys *k)
{
    if (k == NULL)
        return;
    struct key *e = k->keys;
    while (e != NULL) {
        struct key *n = e->next;
        key_free(e);
        e = n;
    }
    pthread_mutex_destroy(&k->lock);
    free(k);
}

static struct key *find_locked(struct ewtp_keys *k, const char *name)
{
    for (struct key *e = k->keys; e != NULL; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static struct key *find(struct ewtp_keys *k, const char *name)
{
    pthread_mutex_lock(&k->lock);
    struct key *e = find_locked(k, name);
    pthread_mutex_unlock(&k->lock);
    return e;
}

/* Inserts e unless the name is taken (then frees e). 0 or -EWTP_EINVAL. */
static int insert(struct ewtp_keys *k, struct key *e)
{
    pthread_mutex_lock(&k->lock);
    int rc = 0;
    if (find_locked(k, e->name) != NULL) {
        rc = -EWTP_EINVAL;
    } else {
        e->next = k->keys;
        k->keys = e;
    }
    pthread_mutex_unlock(&k->lock);
    if (rc < 0)
        key_free(e);
    return rc;
}

static struct key *key_new(const char *name, enum key_kind kind)
{
    struct key *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->kind = kind;
    e->name = strdup(name);
    if (e->name == NULL) {
        free(e);
        return NULL;
    }
    return e;
}

static int fail(struct ewtp_errors *errs, int rc, const char *fmt, const char *a1, const char *a2)
{
    if (errs != NULL)
        ewtp_errors_add(errs, "", "key", fmt, a1, a2 != NULL ? a2 : "");
    return rc;
}

EVP_PKEY *ewtp_keys_as_sm2(EVP_PKEY *k, int selection)
{
    char group[64] = "";
    size_t gl = 0;
    if (EVP_PKEY_is_a(k, "SM2") || !EVP_PKEY_is_a(k, "EC") ||
        EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &gl) != 1 ||
        strcmp(group, "SM2") != 0) {
        EVP_PKEY_up_ref(k);
        return k;
    }
    OSSL_PARAM *params = NULL;
    EVP_PKEY *out = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
    if (c != NULL && EVP_PKEY_todata(k, selection, &params) == 1 && EVP_PKEY_fromdata_init(c) == 1)
        EVP_PKEY_fromdata(c, &out, selection, params);
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(c);
    return out;
}

static int family_of(EVP_PKEY *k, enum ewtp_key_family *f)
{
    if (EVP_PKEY_is_a(k, "RSA")) {
        *f = EWTP_KEY_RSA;
        return 0;
    }
    if (EVP_PKEY_is_a(k, "SM2")) {
        *f = EWTP_KEY_SM2;
        return 0;
    }
    char group[64] = "";
    size_t gl = 0;
    if (EVP_PKEY_is_a(k, "EC") &&
        EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &gl) == 1 &&
        (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)) {
        *f = EWTP_KEY_EC_P256;
        return 0;
    }
    return -EWTP_EUNSUPP;
}

static int cert_to_der(X509 *x, unsigned char **der, size_t *len)
{
    unsigned char *p = NULL;
    int n = i2d_X509(x, &p);
    if (n <= 0)
        return -EWTP_ECRYPTO;
    /* Copy into malloc'd memory so key_free can use free(). */
    *der = malloc((size_t)n);
    if (*der == NULL) {
        OPENSSL_free(p);
        return -EWTP_ENOMEM;
    }
    memcpy(*der, p, (size_t)n);
    OPENSSL_free(p);
    *len = (size_t)n;
    return 0;
}

static int read_cert(const char *path, X509 **out, struct ewtp_errors *errs)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return fail(errs, -EWTP_EIO, "cannot open certificate %s: %s", path, strerror(errno));
    *out = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (*out == NULL)
        return fail(errs, -EWTP_ECRYPTO, "%s is not a PEM certificate%s", path, NULL);
    return 0;
}

int ewtp_keys_add_pem(struct ewtp_keys *k, const char *name, const char *key_file,
                      const char *cert_file, struct ewtp_errors *errs)
{
    if (k == NULL || name == NULL || name[0] == '\0' || key_file == NULL || cert_file == NULL)
        return -EWTP_EINVAL;
    FILE *f = fopen(key_file, "r");
    if (f == NULL)
        return fail(errs, -EWTP_EIO, "cannot open key %s: %s", key_file, strerror(errno));
    EVP_PKEY *raw = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (raw == NULL)
        return fail(errs, -EWTP_ECRYPTO, "%s is not an unencrypted PEM private key%s", key_file,
                    NULL);
    EVP_PKEY *pkey = ewtp_keys_as_sm2(raw, EVP_PKEY_KEYPAIR);
    EVP_PKEY_free(raw);
    X509 *x = NULL;
    struct key *e = NULL;
    int rc = pkey == NULL ? -EWTP_ECRYPTO : read_cert(cert_file, &x, errs);
    if (rc < 0)
        goto out;
    EVP_PKEY *pub = ewtp_keys_as_sm2(X509_get0_pubkey(x), EVP_PKEY_PUBLIC_KEY);
    int same = pub != NULL ? EVP_PKEY_eq(pub, pkey) : 0;
    EVP_PKEY_free(pub);
    if (same != 1) {
        rc = fail(errs, -EWTP_ECRYPTO, "certificate %s does not belong to key %s", cert_file,
                  key_file);
        goto out;
    }
    e = key_new(name, KIND_SOFT);
    if (e == NULL) {
        rc = -EWTP_ENOMEM;
        goto out;
    }
    if ((rc = family_of(pkey, &e->family)) < 0) {
        fail(errs, rc, "key %s: unsupported key type%s", key_file, NULL);
        goto out;
    }
    if ((rc = cert_to_der(x, &e->cert, &e->cert_len)) < 0)
        goto out;
    e->pkey = pkey;
    pkey = NULL;
    rc = insert(k, e);
    e = NULL;
    if (rc < 0)
        fail(errs, rc, "key name %s is already used%s", name, NULL);
out:
    key_free(e);
    EVP_PKEY_free(pkey);
    X509_free(x);
    return rc;
}

/* ---- Test identities ---- */

static EVP_PKEY *generate(enum ewtp_key_family f)
{
    switch (f) {
    case EWTP_KEY_RSA:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    case EWTP_KEY_SM2:
        return EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
    case EWTP_KEY_EC_P256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    }
    return NULL;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -EWTP_ECRYPTO;
}

/* Signs the certificate; SM2 needs the distinguishing id on the context. */
static int self_sign(X509 *x, EVP_PKEY *pkey, enum ewtp_key_family f)
{
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int rc = -EWTP_ECRYPTO;
    if (mc == NULL)
        return -EWTP_ENOMEM;
    if (f == EWTP_KEY_SM2) {
        pc = EVP_PKEY_CTX_new(pkey, NULL);
        if (pc == NULL || EVP_PKEY_CTX_set1_id(pc, SM2_ID, strlen(SM2_ID)) <= 0)
            goto out;
        EVP_MD_CTX_set_pkey_ctx(mc, pc);
    }
    if (EVP_DigestSignInit(mc, NULL, f == EWTP_KEY_SM2 ? EVP_sm3() : EVP_sha256(), NULL, pkey) != 1)
        goto out;
    if (X509_sign_ctx(x, mc) > 0)
        rc = 0;
out:
    EVP_MD_CTX_free(mc);
    EVP_PKEY_CTX_free(pc);
    return rc;
}

static int make_test(const char *name, enum ewtp_key_family f, struct key **out)
{
    EVP_PKEY *pkey = generate(f);
    X509 *x = X509_new();
    struct key *e = NULL;
    int rc = -EWTP_ECRYPTO;
    if (pkey == NULL || x == NULL)
        goto out;
    unsigned char serial[8];
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto out;
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x01); /* positive, 8 bytes */
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    int ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    X509_NAME *subj = X509_get_subject_name(x);
    ok =
        ok && X509_set_version(x, X509_VERSION_3) == 1 &&
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)EWTP_KEYS_TEST_SUBJECT, -1, -1, 0) == 1 &&
        X509_set_issuer_name(x, subj) == 1 &&
        X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
        X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) != NULL &&
        X509_set_pubkey(x, pkey) == 1;
    if (!ok || add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(x, NID_key_usage, "critical,digitalSignature,nonRepudiation") < 0 ||
        add_ext(x, NID_subject_key_identifier, "hash") < 0 || self_sign(x, pkey, f) < 0)
        goto out;
    e = key_new(name, KIND_SOFT);
    if (e == NULL) {
        rc = -EWTP_ENOMEM;
        goto out;
    }
    if ((rc = cert_to_der(x, &e->cert, &e->cert_len)) < 0)
        goto out;
    e->test = true;
    e->family = f;
    e->pkey = pkey;
    pkey = NULL;
    *out = e;
    e = NULL;
    rc = 0;
out:
    key_free(e);
    EVP_PKEY_free(pkey);
    X509_free(x);
    return rc;
}

int ewtp_keys_add_test(struct ewtp_keys *k, const char *name, enum ewtp_key_family family)
{
    if (k == NULL || name == NULL || name[0] == '\0' ||
        (family != EWTP_KEY_RSA && family != EWTP_KEY_SM2 && family != EWTP_KEY_EC_P256))
        return -EWTP_EINVAL;
    if (find(k, name) != NULL)
        return -EWTP_EINVAL;
    struct key *e;
    int rc = make_test(name, family, &e);
    return rc < 0 ? rc : insert(k, e);
}

void ewtp_keys_set_auto_test(struct ewtp_keys *k, bool on)
{
    pthread_mutex_lock(&k->lock);
    k->auto_test = on;
    pthread_mutex_unlock(&k->lock);
}

bool ewtp_keys_is_test(struct ewtp_keys *k, const char *name)
{
    struct key *e = k != NULL && name != NULL ? find(k, name) : NULL;
    return e != NULL && e->test;
}

/* The key, or with auto test identities a new one of family f, created under the lock so
 * two threads never make two. */
static struct key *lookup(struct ewtp_keys *k, const char *name, enum ewtp_key_family f)
{
    pthread_mutex_lock(&k->lock);
    struct key *e = find_locked(k, name);
    if (e == NULL && k->auto_test && name[0] != '\0' && make_test(name, f, &e) == 0) {
        e->next = k->keys;
        k->keys = e;
    }
    pthread_mutex_unlock(&k->lock);
    return e;
}

/* ---- External commands ---- */

/* The family named by a certificate file, for external and remote signers. */
static int cert_family(const char *cert_file, struct key *e, struct ewtp_errors *errs)
{
    X509 *x = NULL;
    int rc = read_cert(cert_file, &x, errs);
    if (rc == 0)
        rc = cert_to_der(x, &e->cert, &e->cert_len);
    if (rc == 0) {
        EVP_PKEY *pub = ewtp_keys_as_sm2(X509_get0_pubkey(x), EVP_PKEY_PUBLIC_KEY);
        if (pub == NULL || family_of(pub, &e->family) < 0)
            rc = fail(errs, -EWTP_EUNSUPP, "certificate %s: unsupported key type%s", cert_file,
                      NULL);
        EVP_PKEY_free(pub);
    }
    X509_free(x);
    return rc;
}

int ewtp_keys_add_command(struct ewtp_keys *k, const char *name, const char *command,
                          const char *cert_file, int64_t timeout_ms, unsigned flags,
                          struct ewtp_errors *errs)
{
    if (k == NULL || name == NULL || name[0] == '\0' || command == NULL || command[0] == '\0')
        return -EWTP_EINVAL;
    struct key *e = key_new(name, KIND_COMMAND);
    if (e == NULL)
        return -EWTP_ENOMEM;
    e->command = strdup(command);
    e->timeout_ms = timeout_ms > 0 ? timeout_ms : CMD_DEFAULT_TIMEOUT_MS;
    e->flags = flags;
    if (e->command == NULL) {
        key_free(e);
        return -EWTP_ENOMEM;
    }
    int rc = cert_file != NULL ? cert_family(cert_file, e, errs) : 0;
    if (rc < 0) {
        key_free(e);
        return rc;
    }
    rc = insert(k, e);
    if (rc < 0)
        fail(errs, rc, "key name %s is already used%s", name, NULL);
    return rc;
}

/* ---- Remote signers (ewtp-signer) ---- */

int ewtp_keys_add_remote(struct ewtp_keys *k, const char *name,
                         const struct ewtp_remote_conf *remote, const char *cert_file,
                         struct ewtp_errors *errs)
{
    if (k == NULL || name == NULL || name[0] == '\0' || remote == NULL || cert_file == NULL)
        return -EWTP_EINVAL;
    struct key *e = key_new(name, KIND_REMOTE);
    if (e == NULL)
        return -EWTP_ENOMEM;
    int rc = cert_family(cert_file, e, errs);
    if (rc == 0)
        rc = ewtp_remote_signer_new(remote, &e->remote, errs);
    if (rc < 0) {
        key_free(e);
        return rc;
    }
    rc = insert(k, e);
    if (rc < 0)
        fail(errs, rc, "key name %s is already used%s", name, NULL);
    return rc;
}

static const char *alg_name(enum ewtp_sign_alg alg)
{
    switch (alg) {
    case EWTP_SIGN_RSA_SHA1:
        return "rsa-sha1";
    case EWTP_SIGN_RSA_SHA256:
        return "rsa-sha256";
    case EWTP_SIGN_SM2_SM3:
        return "sm2-sm3";
    case EWTP_SIGN_ECDSA_SHA256:
        return "ecdsa-sha256";
    case EWTP_SIGN_RSA_SHA512:
        return "rsa-sha512";
    }
    return NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Builds the child's environment before fork (the child may only call async-signal-safe
 * functions): ours without EWTP_KEY_NAME/EWTP_SIGN_ALG, plus those two. */
static char **child_env(const char *name, const char *alg, char **keyvar, char **algvar)
{
    size_t n = 0;
    for (char **p = environ; p != NULL && *p != NULL; p++)
        n++;
    char **env = calloc(n + 3, sizeof(*env));
    if (env == NULL || asprintf(keyvar, "EWTP_KEY_NAME=%s", name) < 0) {
        free(env);
        *keyvar = NULL;
        return NULL;
    }
    if (asprintf(algvar, "EWTP_SIGN_ALG=%s", alg) < 0) {
        free(env);
        free(*keyvar);
        *keyvar = *algvar = NULL;
        return NULL;
    }
    size_t o = 0;
    for (char **p = environ; p != NULL && *p != NULL; p++)
        if (strncmp(*p, "EWTP_KEY_NAME=", 14) != 0 && strncmp(*p, "EWTP_SIGN_ALG=", 14) != 0)
            env[o++] = *p;
    env[o++] = *keyvar;
    env[o++] = *algvar;
    env[o] = NULL;
    return env;
}

static void kill_group(pid_t pid)
{
    /* The group may not exist yet if the child has not run setpgid: kill it directly too. */
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

/* Runs the command with data on stdin; collects stdout (at most CMD_MAX_OUTPUT bytes).
 * SIGPIPE is blocked in this thread meanwhile, so a signer that exits without reading all
 * its input gives EPIPE rather than killing the host. */
static int run_command(const struct key *e, const char *alg, const void *data, size_t len,
                       unsigned char **out, size_t *out_len)
{
    int in[2] = {-1, -1}, outp[2] = {-1, -1};
    char *keyvar = NULL, *algvar = NULL;
    char **env = child_env(e->name, alg, &keyvar, &algvar);
    unsigned char *buf = malloc(CMD_MAX_OUTPUT);
    int rc = -EWTP_ECRYPTO;
    pid_t pid = -1;
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    if (env == NULL || buf == NULL) {
        rc = -EWTP_ENOMEM;
        goto out;
    }
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(outp, O_CLOEXEC) != 0)
        goto out;
    char *const argv[] = {"/bin/sh", "-c", e->command, NULL};
    pid = fork();
    if (pid < 0)
        goto out;
    if (pid == 0) {
        /* Child: async-signal-safe calls only. Its own process group, so that a timeout
         * kills whatever the shell started too. */
        setpgid(0, 0);
        sigprocmask(SIG_SETMASK, &old_set, NULL);
        if (dup2(in[0], 0) < 0 || dup2(outp[1], 1) < 0)
            _exit(127);
        execve("/bin/sh", argv, env);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: whichever runs first wins the race */
    close(in[0]);
    close(outp[1]);
    in[0] = outp[1] = -1;
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(outp[0], F_SETFL, O_NONBLOCK);

    const unsigned char *src = data;
    size_t sent = 0, got = 0;
    int64_t deadline = now_ms() + e->timeout_ms;
    bool timed_out = false, overflow = false;
    if (len == 0) {
        close(in[1]);
        in[1] = -1;
    }
    while (outp[0] >= 0) {
        struct pollfd pf[2] = {{.fd = outp[0], .events = POLLIN}, {.fd = in[1], .events = POLLOUT}};
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int pr = poll(pf, in[1] >= 0 ? 2 : 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        if (in[1] >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(in[1], src + sent, len - sent);
            if (w > 0)
                sent += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == len) {
                close(in[1]); /* done, or the signer stopped reading */
                in[1] = -1;
            }
        }
        if (pf[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t r = read(outp[0], buf + got, CMD_MAX_OUTPUT - got);
            if (r > 0) {
                got += (size_t)r;
                if (got == CMD_MAX_OUTPUT) {
                    overflow = true;
                    break;
                }
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(outp[0]);
                outp[0] = -1;
            }
        }
    }
    if (timed_out || overflow)
        kill_group(pid);
    int status = 0;
    /* The signer closed stdout; give it the rest of the timeout to exit. */
    while (!timed_out && !overflow) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        if (now_ms() >= deadline) {
            timed_out = true;
            kill_group(pid);
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (timed_out || overflow)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    pid = -1;
    if (!timed_out && !overflow && WIFEXITED(status) && WEXITSTATUS(status) == 0 && got > 0) {
        *out = buf;
        *out_len = got;
        buf = NULL;
        rc = 0;
    }
out:
    if (pid > 0) {
        kill_group(pid);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (outp[i] >= 0)
            close(outp[i]);
    }
    /* Swallow a SIGPIPE raised by our writes before unblocking. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
        ;
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    free(buf);
    free(env);
    free(keyvar);
    free(algvar);
    return rc;
}

static int sign_command(const struct key *e, enum ewtp_sign_alg alg, const void *data, size_t len,
                        struct ewtp_arena *a, const unsigned char **sig, size_t *sig_len)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    int rc = run_command(e, alg_name(alg), data, len, &raw, &raw_len);
    if (rc < 0)
        return rc;
    if (e->flags & EWTP_KEYS_CMD_BASE64) {
        unsigned char *dec;
        size_t dec_len;
        rc =
            ewtp_base64_decode(a, (const char *)raw, raw_len, EWTP_BASE64_ALLOW_WS, &dec, &dec_len);
        if (rc == 0 && dec_len == 0)
            rc = -EWTP_ECRYPTO;
        if (rc == 0) {
            *sig = dec;
            *sig_len = dec_len;
        } else {
            rc = -EWTP_ECRYPTO;
        }
    } else {
        *sig = ewtp_arena_memdup(a, raw, raw_len);
        *sig_len = raw_len;
        rc = *sig == NULL ? -EWTP_ENOMEM : 0;
    }
    free(raw);
    return rc;
}

/* ---- Software signing ---- */

static bool alg_fits(enum ewtp_key_family f, enum ewtp_sign_alg alg)
{
    switch (alg) {
    case EWTP_SIGN_RSA_SHA1:
    case EWTP_SIGN_RSA_SHA256:
    case EWTP_SIGN_RSA_SHA512:
        return f == EWTP_KEY_RSA;
    case EWTP_SIGN_SM2_SM3:
        return f == EWTP_KEY_SM2;
    case EWTP_SIGN_ECDSA_SHA256:
        return f == EWTP_KEY_EC_P256;
    }
    return false;
}

static enum ewtp_key_family family_for(enum ewtp_sign_alg alg)
{
    return alg == EWTP_SIGN_SM2_SM3        ? EWTP_KEY_SM2
           : alg == EWTP_SIGN_ECDSA_SHA256 ? EWTP_KEY_EC_P256
                                           : EWTP_KEY_RSA;
}

static int sign_soft(const struct key *e, enum ewtp_sign_alg alg, const void *data, size_t len,
                     struct ewtp_arena *a, const unsigned char **sig, size_t *sig_len)
{
    const EVP_MD *md = alg == EWTP_SIGN_RSA_SHA1     ? EVP_sha1()
                       : alg == EWTP_SIGN_SM2_SM3    ? EVP_sm3()
                       : alg == EWTP_SIGN_RSA_SHA512 ? EVP_sha512()
                                                     : EVP_sha256();
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int rc = -EWTP_ECRYPTO;
    size_t max = (size_t)EVP_PKEY_get_size(e->pkey);
    unsigned char *buf = ewtp_arena_alloc(a, max > 0 ? max : 1);
    if (mc == NULL || buf == NULL) {
        rc = -EWTP_ENOMEM;
        goto out;
    }
    if (alg == EWTP_SIGN_SM2_SM3) {
        /* The id enters SM2's Z value: it must be set before the digest starts. */
        pc = EVP_PKEY_CTX_new(e->pkey, NULL);
        if (pc == NULL || EVP_PKEY_CTX_set1_id(pc, SM2_ID, strlen(SM2_ID)) <= 0)
            goto out;
        EVP_MD_CTX_set_pkey_ctx(mc, pc);
    }
    if (EVP_DigestSignInit(mc, NULL, md, NULL, e->pkey) != 1)
        goto out;
    /* One call with a buffer of the maximum size: asking the size first would consume the
     * input on providers without one-shot signing (SM2). */
    size_t n = max;
    if (EVP_DigestSign(mc, buf, &n, data, len) != 1)
        goto out;
    *sig = buf;
    *sig_len = n;
    rc = 0;
out:
    EVP_MD_CTX_free(mc);
    EVP_PKEY_CTX_free(pc);
    return rc;
}

int ewtp_keys_sign(void *ctx, const char *key_name, enum ewtp_sign_alg alg, const void *data,
                   size_t len, struct ewtp_arena *a, const unsigned char **sig, size_t *sig_len)
{
    struct ewtp_keys *k = ctx;
    if (k == NULL || key_name == NULL || sig == NULL || sig_len == NULL ||
        (data == NULL && len > 0))
        return -EWTP_EINVAL;
    if (alg_name(alg) == NULL)
        return -EWTP_EUNSUPP;
    struct key *e = lookup(k, key_name, family_for(alg));
    if (e == NULL)
        return -EWTP_ENOTFOUND;
    if (e->kind == KIND_REMOTE) {
        if (!alg_fits(e->family, alg))
            return -EWTP_EUNSUPP;
        char why[512];
        int rc = ewtp_remote_sign(e->remote, alg_name(alg), data, len, a, sig, sig_len, why,
                                  sizeof(why));
        /* Logged here, where the reason is known: the caller sees one code and retries. */
        if (rc < 0)
            fprintf(stderr, "<4>key %s: remote signer: %s\n", e->name, why);
        return rc;
    }
    if (e->kind == KIND_COMMAND) {
        /* Without a certificate the family is unknown: let the signer decide. */
        if (e->cert != NULL && !alg_fits(e->family, alg))
            return -EWTP_EUNSUPP;
        return sign_command(e, alg, data, len, a, sig, sig_len);
    }
    if (!alg_fits(e->family, alg))
        return -EWTP_EUNSUPP;
    return sign_soft(e, alg, data, len, a, sig, sig_len);
}

int ewtp_keys_cert(void *ctx, const char *key_name, struct ewtp_arena *a, const unsigned char **der,
                   size_t *der_len)
{
    struct ewtp_keys *k = ctx;
    if (k == NULL || key_name == NULL || der == NULL || der_len == NULL)
        return -EWTP_EINVAL;
    struct key *e = lookup(k, key_name, EWTP_KEY_RSA);
    if (e == NULL || e->cert == NULL)
        return -EWTP_ENOTFOUND;
    *der = ewtp_arena_memdup(a, e->cert, e->cert_len);
    *der_len = e->cert_len;
    return *der == NULL ? -EWTP_ENOMEM : 0;
}

int ewtp_keys_random(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    if (len > INT32_MAX)
        return -EWTP_EINVAL;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -EWTP_ECRYPTO;
}

int ewtp_keys_write_cert_pem(struct ewtp_keys *k, const char *name, const char *path)
{
    struct key *e = k != NULL && name != NULL ? find(k, name) : NULL;
    if (e == NULL || e->cert == NULL)
        return -EWTP_ENOTFOUND;
    const unsigned char *p = e->cert;
    X509 *x = d2i_X509(NULL, &p, (long)e->cert_len);
    if (x == NULL)
        return -EWTP_ECRYPTO;
    int rc = -EWTP_EIO;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL && fd >= 0)
        close(fd);
    if (f != NULL) {
        if (PEM_write_X509(f, x) == 1)
            rc = 0;
        if (fclose(f) != 0)
            rc = -EWTP_EIO;
    }
    X509_free(x);
    return rc;
}
