/* evidence.c — evidence bundles: build (store -> signed tar) and verify (evidence.h). */
#include "evidence.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ewtp/arena.h>
#include <ewtp/crypto.h>
#include <ewtp/errors.h>

#include "store.h"
#include "util.h"

#define FORMAT "ewtp-evidence/1"
#define MAX_BUNDLE_FILE (64u << 20)

static void set_why(char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(char **why, const char *fmt, ...)
{
    if (why == NULL)
        return;
    free(*why);
    va_list ap;
    va_start(ap, fmt);
    *why = ewtp_vasprintf(fmt, ap);
    va_end(ap);
}

/* The hash of an entry: SHA-256 (hex) of its compact JSON with sorted keys, without "hash". */
static int entry_hash(const json_t *entry, char hex[65])
{
    json_t *c = json_deep_copy(entry);
    if (c == NULL)
        return -EWTP_ENOMEM;
    json_object_del(c, "hash");
    char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(c);
    if (text == NULL)
        return -EWTP_ENOMEM;
    int rc = ewtp_sha256_hex(text, strlen(text), hex);
    free(text);
    return rc;
}

/* ---- building ------------------------------------------------------------------------------ */

struct file {
    char *name;
    unsigned char *data;
    size_t len;
    bool owned;
};

struct builder {
    json_t *entries;
    struct file *files;
    size_t n, cap;
    char prev[65];
};

static int add_entry(struct builder *b, const char *kind, const char *name, int64_t at,
                     const char *meta, const void *data, size_t len, bool copy)
{
    if (b->n == b->cap) {
        size_t ncap = b->cap ? 2 * b->cap : 16;
        struct file *nf = realloc(b->files, ncap * sizeof(*nf));
        if (nf == NULL)
            return -EWTP_ENOMEM;
        b->files = nf;
        b->cap = ncap;
    }
    struct file *f = &b->files[b->n];
    f->name = strdup(name);
    f->len = len;
    f->owned = copy;
    f->data = copy ? malloc(len ? len : 1) : (unsigned char *)data;
    if (f->name == NULL || f->data == NULL) {
        free(f->name);
        if (copy)
            free(f->data);
        return -EWTP_ENOMEM;
    }
    if (copy && len)
        memcpy(f->data, data, len);
    b->n++;
    char fh[65], t[40];
    ewtp_sha256_hex(data ? data : "", len, fh);
    json_t *m = meta ? json_loads(meta, 0, NULL) : NULL;
    json_t *e = json_pack("{s:I,s:s,s:s,s:s,s:s,s:o,s:s}", "seq", (json_int_t)(b->n), "kind", kind,
                          "file", name, "at", ewtp_fmt_time(t, sizeof(t), at), "sha256", fh, "meta",
                          m ? m : json_null(), "prev", b->prev);
    char h[65];
    if (e == NULL || entry_hash(e, h) != 0) {
        json_decref(e);
        return -EWTP_ENOMEM;
    }
    json_object_set_new(e, "hash", json_string(h));
    memcpy(b->prev, h, sizeof(h));
    return json_array_append_new(b->entries, e) == 0 ? 0 : -EWTP_ENOMEM;
}

static void builder_free(struct builder *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->files[i].name);
        if (b->files[i].owned)
            free(b->files[i].data);
    }
    free(b->files);
    json_decref(b->entries);
}

/* A file name part from text: [A-Za-z0-9._-], others '_'. */
static void safe_name(char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '-' || *s == '_' || *s == '/'))
            *s = '_';
}

/* The algorithm that fits the certificate's key. */
static int alg_of(X509 *cert, enum ewtp_sign_alg *alg, const char **name)
{
    EVP_PKEY *k = X509_get0_pubkey(cert);
    if (k == NULL)
        return -EWTP_ECRYPTO;
    if (EVP_PKEY_is_a(k, "RSA")) {
        *alg = EWTP_SIGN_RSA_SHA256;
        *name = "rsa-sha256";
    } else if (EVP_PKEY_is_a(k, "SM2")) {
        *alg = EWTP_SIGN_SM2_SM3;
        *name = "sm2-sm3";
    } else if (EVP_PKEY_is_a(k, "EC")) {
        *alg = EWTP_SIGN_ECDSA_SHA256;
        *name = "ecdsa-sha256";
    } else {
        return -EWTP_EUNSUPP;
    }
    return 0;
}

static la_ssize_t tar_write(struct archive *a, void *arg, const void *buf, size_t len)
{
    (void)a;
    struct ewtp_buf {
        unsigned char *p;
        size_t len, cap;
    } *o = arg;
    if (o->len + len > o->cap) {
        size_t ncap = o->cap ? o->cap : 65536;
        while (ncap < o->len + len)
            ncap *= 2;
        unsigned char *np = realloc(o->p, ncap);
        if (np == NULL)
            return -1;
        o->p = np;
        o->cap = ncap;
    }
    memcpy(o->p + o->len, buf, len);
    o->len += len;
    return (la_ssize_t)len;
}

static int tar_add(struct archive *a, const char *name, const void *data, size_t len, int64_t at)
{
    struct archive_entry *e = archive_entry_new();
    if (e == NULL)
        return -EWTP_ENOMEM;
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, (time_t)(at / 1000), 0);
    int rc = archive_write_header(a, e) == ARCHIVE_OK &&
                     (len == 0 || archive_write_data(a, data, len) == (la_ssize_t)len)
                 ? 0
                 : -EWTP_EIO;
    archive_entry_free(e);
    return rc;
}

int ewtp_evidence_bundle(struct ewtp_store *st, const struct ewtp_host *h, const char *key_name,
                         const char *tenant, const char *id, int64_t now, unsigned char **out,
                         size_t *out_len, char **why)
{
    *out = NULL;
    *out_len = 0;
    struct ewtp_store_evidence_row *rows = NULL;
    size_t n_rows = 0;
    struct ewtp_store_event *ev = NULL;
    size_t n_ev = 0;
    struct builder b = {.entries = json_array()};
    struct ewtp_arena *ar = ewtp_arena_new();
    json_t *man = NULL;
    X509 *cert = NULL;
    char *pem = NULL;
    int rc = b.entries && ar ? 0 : -EWTP_ENOMEM;
    if (rc == 0 && (key_name == NULL || key_name[0] == '\0')) {
        set_why(why, "no evidence key is configured (evidence = { key = \"NAME\"; })");
        rc = -EWTP_EINVAL;
    }
    if (rc == 0)
        rc = ewtp_store_evidence_get(st, tenant, id, &rows, &n_rows);
    if (rc == 0)
        rc = ewtp_store_events(st, tenant, id, &ev, &n_ev);
    /* The bytes sent and answered, in the order they were kept. */
    for (size_t i = 0; rc == 0 && i < n_rows; i++) {
        char *name = ewtp_asprintf("evidence/%s", rows[i].name);
        if (name == NULL) {
            rc = -EWTP_ENOMEM;
            break;
        }
        safe_name(name);
        rc = add_entry(&b, rows[i].kind, name, rows[i].at, rows[i].meta, rows[i].body,
                       rows[i].body_len, false);
        free(name);
    }
    /* The state history, and each raw receipt as a file of its own. */
    for (size_t i = 0; rc == 0 && i < n_ev; i++) {
        json_t *e = json_pack("{s:s,s:s,s:I}", "type", ev[i].type, "state", ev[i].state, "attempt",
                              (json_int_t)ev[i].attempt);
        json_t *det = ev[i].detail ? json_loads(ev[i].detail, 0, NULL) : NULL;
        char t[40];
        json_object_set_new(e, "at", json_string(ewtp_fmt_time(t, sizeof(t), ev[i].at)));
        json_object_set(e, "detail", det ? det : json_null());
        char *text = json_dumps(e, JSON_INDENT(1) | JSON_SORT_KEYS);
        char *name = ewtp_asprintf("events/%03zu-%s.json", i + 1, ev[i].type);
        char *meta = ewtp_asprintf("{\"type\":\"%s\",\"state\":\"%s\"}", ev[i].type, ev[i].state);
        if (text && name && meta) {
            safe_name(name);
            rc = add_entry(&b, "state", name, ev[i].at, meta, text, strlen(text), true);
        } else {
            rc = -EWTP_ENOMEM;
        }
        const char *raw = json_string_value(json_object_get(det, "raw"));
        const char *raw64 = json_string_value(json_object_get(det, "raw_base64"));
        if (rc == 0 && (raw || raw64)) {
            unsigned char *bytes = NULL;
            size_t blen = 0;
            if (raw) {
                bytes = (unsigned char *)raw;
                blen = json_string_length(json_object_get(det, "raw"));
            } else if (ewtp_base64_decode(ar, raw64, strlen(raw64), EWTP_BASE64_ALLOW_WS, &bytes,
                                          &blen) != 0) {
                bytes = NULL;
            }
            char *rn = ewtp_asprintf("receipts/%03zu-%s.raw", i + 1, ev[i].type);
            if (rn && bytes) {
                safe_name(rn);
                rc = add_entry(&b, strcmp(ev[i].type, "receipt") == 0 ? "receipt" : "answer_raw",
                               rn, ev[i].at, meta, bytes, blen, true);
            }
            free(rn);
        }
        free(text);
        free(name);
        free(meta);
        json_decref(det);
        json_decref(e);
    }
    /* The head, signed with the evidence key; its certificate goes with the bundle. */
    const unsigned char *der = NULL, *sig = NULL;
    size_t der_len = 0, sig_len = 0;
    enum ewtp_sign_alg alg = EWTP_SIGN_RSA_SHA256;
    const char *alg_name = NULL;
    if (rc == 0) {
        int krc = h && h->cert ? h->cert(h->ctx, key_name, ar, &der, &der_len) : -EWTP_ENOTFOUND;
        const unsigned char *p = der;
        if (krc == 0)
            cert = d2i_X509(NULL, &p, (long)der_len);
        if (krc != 0 || cert == NULL || alg_of(cert, &alg, &alg_name) != 0) {
            set_why(why, "the evidence key \"%s\" has no usable certificate", key_name);
            rc = krc ? krc : -EWTP_ECRYPTO;
        }
    }
    if (rc == 0) {
        int srcrc = h->sign(h->ctx, key_name, alg, b.prev, strlen(b.prev), ar, &sig, &sig_len);
        if (srcrc != 0) {
            set_why(why, "the evidence key \"%s\" could not sign: %s", key_name,
                    ewtp_strerror(srcrc));
            rc = srcrc;
        }
    }
    if (rc == 0) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *bp = NULL;
        long bl = 0;
        if (bio && PEM_write_bio_X509(bio, cert) == 1 && (bl = BIO_get_mem_data(bio, &bp)) > 0 &&
            (pem = malloc((size_t)bl + 1)) != NULL) {
            memcpy(pem, bp, (size_t)bl); /* not NUL-terminated */
            pem[bl] = '\0';
        }
        BIO_free(bio);
        char t[40];
        char *sig64 = ewtp_base64_encode(ar, sig, sig_len);
        man = pem && sig64 ? json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:{s:s,s:s,s:s},s:s}", "format",
                                       FORMAT, "tenant", tenant, "id", id, "created_at",
                                       ewtp_fmt_time(t, sizeof(t), now), "entries", b.entries,
                                       "head", b.prev, "signature", "key", key_name, "algorithm",
                                       alg_name, "value", sig64, "certificate", pem)
                           : NULL;
        if (man == NULL)
            rc = -EWTP_ENOMEM;
    }
    /* The archive. */
    struct ewtp_buf {
        unsigned char *p;
        size_t len, cap;
    } buf = {0};
    if (rc == 0) {
        char *mtext = json_dumps(man, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        struct archive *a = archive_write_new();
        if (mtext == NULL || a == NULL ||
            archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
            archive_write_open2(a, &buf, NULL, tar_write, NULL, NULL) != ARCHIVE_OK) {
            rc = -EWTP_ENOMEM;
        } else {
            rc = tar_add(a, "manifest.json", mtext, strlen(mtext), now);
            for (size_t i = 0; rc == 0 && i < b.n; i++)
                rc = tar_add(a, b.files[i].name, b.files[i].data, b.files[i].len, now);
            if (archive_write_close(a) != ARCHIVE_OK && rc == 0)
                rc = -EWTP_EIO;
        }
        if (a)
            archive_write_free(a);
        free(mtext);
        if (rc != 0)
            set_why(why, "cannot write the evidence archive");
    }
    if (rc == 0) {
        *out = buf.p;
        *out_len = buf.len;
    } else {
        free(buf.p);
    }
    json_decref(man);
    free(pem);
    X509_free(cert);
    builder_free(&b);
    ewtp_store_evidence_free(rows, n_rows);
    ewtp_store_events_free(ev, n_ev);
    ewtp_arena_free(ar);
    return rc;
}

/* ---- verifying ----------------------------------------------------------------------------- */

static const struct file *find_file(const struct file *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].name, name) == 0)
            return &f[i];
    return NULL;
}

static int verify_signature(const char *pem, const char *alg, const char *sig64, const char *head)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    EVP_PKEY *k = cert ? X509_get0_pubkey(cert) : NULL;
    struct ewtp_arena *ar = ewtp_arena_new();
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    int ok = 0;
    if (k && ar && sig64 &&
        ewtp_base64_decode(ar, sig64, strlen(sig64), EWTP_BASE64_ALLOW_WS, &sig, &sig_len) == 0) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        bool sm2 = alg && strcmp(alg, "sm2-sm3") == 0;
        const EVP_MD *dg = sm2 ? EVP_sm3() : EVP_sha256();
        if (md && EVP_DigestVerifyInit(md, &pctx, dg, NULL, k) == 1) {
            if (sm2 && pctx)
                EVP_PKEY_CTX_set1_id(pctx, "1234567812345678", 16);
            ok = EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)head, strlen(head)) == 1;
        }
        EVP_MD_CTX_free(md);
    }
    ewtp_arena_free(ar);
    X509_free(cert);
    return ok ? 0 : -1;
}

int ewtp_evidence_verify(const void *tar, size_t len, char **why)
{
    struct file *files = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct archive *a = archive_read_new();
    if (a == NULL)
        return -EWTP_ENOMEM;
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_memory(a, tar, len) != ARCHIVE_OK) {
        set_why(why, "not a tar archive: %s", archive_error_string(a));
        archive_read_free(a);
        return -EWTP_EINVAL;
    }
    struct archive_entry *e;
    int x;
    while (rc == 0 && (x = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        la_int64_t size = archive_entry_size(e);
        if (size < 0 || size > MAX_BUNDLE_FILE) {
            set_why(why, "%s: too large", archive_entry_pathname(e));
            rc = -EWTP_EINVAL;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            struct file *nf = realloc(files, cap * sizeof(*nf));
            if (nf == NULL) {
                rc = -EWTP_ENOMEM;
                break;
            }
            files = nf;
        }
        struct file *f = &files[n];
        f->name = strdup(archive_entry_pathname(e));
        f->len = (size_t)size;
        f->data = malloc(f->len + 1);
        f->owned = true;
        if (f->name == NULL || f->data == NULL) {
            free(f->name);
            free(f->data);
            rc = -EWTP_ENOMEM;
            break;
        }
        n++;
        if (f->len && archive_read_data(a, f->data, f->len) != (la_ssize_t)f->len) {
            set_why(why, "%s: truncated", f->name);
            rc = -EWTP_EINVAL;
        }
        f->data[f->len] = 0;
    }
    if (rc == 0 && x != ARCHIVE_EOF) {
        set_why(why, "not a tar archive: %s", archive_error_string(a));
        rc = -EWTP_EINVAL;
    }
    archive_read_free(a);
    const struct file *mf = rc == 0 ? find_file(files, n, "manifest.json") : NULL;
    json_t *man = mf ? json_loadb((const char *)mf->data, mf->len, 0, NULL) : NULL;
    if (rc == 0 && (man == NULL || !json_is_array(json_object_get(man, "entries")))) {
        set_why(why, "manifest.json: missing or not an evidence manifest");
        rc = -EWTP_EINVAL;
    }
    char prev[65] = "";
    json_t *entries = json_object_get(man, "entries");
    for (size_t i = 0; rc == 0 && i < json_array_size(entries); i++) {
        json_t *en = json_array_get(entries, i);
        const char *file = json_string_value(json_object_get(en, "file"));
        const char *fh = json_string_value(json_object_get(en, "sha256"));
        const char *p = json_string_value(json_object_get(en, "prev"));
        const char *hh = json_string_value(json_object_get(en, "hash"));
        const struct file *f = file ? find_file(files, n, file) : NULL;
        char got[65], eh[65];
        if (f == NULL) {
            set_why(why, "entry %zu (%s): the file is missing", i + 1, file ? file : "?");
            rc = 1;
        } else if (ewtp_sha256_hex(f->data, f->len, got) != 0 || fh == NULL ||
                   strcmp(got, fh) != 0) {
            set_why(why, "entry %zu (%s): the file's SHA-256 is not the one in the manifest", i + 1,
                    file);
            rc = 1;
        } else if (p == NULL || strcmp(p, prev) != 0) {
            set_why(why, "entry %zu (%s): prev is not the hash of entry %zu", i + 1, file, i);
            rc = 1;
        } else if (entry_hash(en, eh) != 0 || hh == NULL || strcmp(eh, hh) != 0) {
            set_why(why, "entry %zu (%s): its hash is not the hash of its contents", i + 1, file);
            rc = 1;
        } else {
            snprintf(prev, sizeof(prev), "%s", hh);
        }
    }
    if (rc == 0) {
        const char *head = json_string_value(json_object_get(man, "head"));
        json_t *sg = json_object_get(man, "signature");
        if (head == NULL || strcmp(head, prev) != 0) {
            set_why(why, "head: not the hash of the last entry");
            rc = 1;
        } else if (verify_signature(json_string_value(json_object_get(man, "certificate")),
                                    json_string_value(json_object_get(sg, "algorithm")),
                                    json_string_value(json_object_get(sg, "value")), head) != 0) {
            set_why(why, "head: the signature does not verify with the bundle's certificate (the "
                         "chain was recomputed or the signature replaced)");
            rc = 1;
        }
    }
    json_decref(man);
    for (size_t i = 0; i < n; i++) {
        free(files[i].name);
        free(files[i].data);
    }
    free(files);
    return rc;
}
