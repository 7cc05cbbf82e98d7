/* Unit tests for daemon/keys.c: PEM keys, test identities, external signer commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <ewtp/crypto.h>

#include "keys.h"

struct fx {
    char dir[64];
    struct ewtp_arena *a;
};

static int sh(const struct fx *f, const char *cmd)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "cd '%s' && (%s) >>log.txt 2>&1", f->dir, cmd);
    int st = system(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *path_in(const struct fx *f, const char *name)
{
    return ewtp_arena_printf(f->a, "%s/%s", f->dir, name);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/ewtp-keys-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    f->a = ewtp_arena_new();
    /* Keys and certificates made by the openssl CLI, independently of keys.c. */
    if (sh(f, "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key && "
              "openssl req -x509 -new -key rsa.key -subj /CN=rsa -days 2 -out rsa.crt && "
              "openssl genpkey -algorithm SM2 -out sm2.key && "
              "openssl req -x509 -new -key sm2.key -sm3 -sigopt distid:1234567812345678 "
              "-subj /CN=sm2 -days 2 -out sm2.crt && "
              "openssl ecparam -name SM2 -genkey -noout -out ecsm2.key && "
              "openssl req -x509 -new -key ecsm2.key -sm3 -sigopt distid:1234567812345678 "
              "-subj /CN=ecsm2 -days 2 -out ecsm2.crt && "
              "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key && "
              "openssl req -x509 -new -key ec.key -subj /CN=ec -days 2 -out ec.crt") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    ewtp_arena_free(f->a);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* Verifies sig over data with the certificate's public key, independently of keys.c. */
static bool verify_with_cert(const unsigned char *der, size_t der_len, enum ewtp_sign_alg alg,
                             const void *data, size_t len, const unsigned char *sig, size_t sig_len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    assert_non_null(x);
    EVP_PKEY *k = X509_get0_pubkey(x);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    const EVP_MD *md = alg == EWTP_SIGN_RSA_SHA1     ? EVP_sha1()
                       : alg == EWTP_SIGN_SM2_SM3    ? EVP_sm3()
                       : alg == EWTP_SIGN_RSA_SHA512 ? EVP_sha512()
                                                     : EVP_sha256();
    if (alg == EWTP_SIGN_SM2_SM3) {
        pc = EVP_PKEY_CTX_new(k, NULL);
        EVP_PKEY_CTX_set1_id(pc, "1234567812345678", 16);
        EVP_MD_CTX_set_pkey_ctx(mc, pc);
    }
    bool ok = EVP_DigestVerifyInit(mc, NULL, md, NULL, k) == 1 &&
              EVP_DigestVerify(mc, sig, sig_len, data, len) == 1;
    EVP_MD_CTX_free(mc);
    EVP_PKEY_CTX_free(pc);
    X509_free(x);
    return ok;
}

static void sign_and_check(struct fx *f, struct ewtp_keys *k, const char *name,
                           enum ewtp_sign_alg alg)
{
    const char *msg = "<SignedInfo>data</SignedInfo>";
    const unsigned char *sig, *der;
    size_t sig_len, der_len;
    assert_int_equal(ewtp_keys_sign(k, name, alg, msg, strlen(msg), f->a, &sig, &sig_len), 0);
    assert_int_equal(ewtp_keys_cert(k, name, f->a, &der, &der_len), 0);
    assert_true(verify_with_cert(der, der_len, alg, msg, strlen(msg), sig, sig_len));
    assert_false(verify_with_cert(der, der_len, alg, msg, strlen(msg) - 1, sig, sig_len));
}

static void test_pem_keys(void **state)
{
    struct fx *f = *state;
    struct ewtp_keys *k = ewtp_keys_new();
    struct ewtp_errors *e = ewtp_errors_new();
    assert_int_equal(ewtp_keys_add_pem(k, "rsa", path_in(f, "rsa.key"), path_in(f, "rsa.crt"), e),
                     0);
    assert_int_equal(ewtp_keys_add_pem(k, "sm2", path_in(f, "sm2.key"), path_in(f, "sm2.crt"), e),
                     0);
    assert_int_equal(
        ewtp_keys_add_pem(k, "ecsm2", path_in(f, "ecsm2.key"), path_in(f, "ecsm2.crt"), e), 0);
    assert_int_equal(ewtp_keys_add_pem(k, "ec", path_in(f, "ec.key"), path_in(f, "ec.crt"), e), 0);
    assert_int_equal(ewtp_errors_count(e), 0);
    sign_and_check(f, k, "rsa", EWTP_SIGN_RSA_SHA256);
    sign_and_check(f, k, "rsa", EWTP_SIGN_RSA_SHA1);
    sign_and_check(f, k, "rsa", EWTP_SIGN_RSA_SHA512); /* ABI 1.3 (Ethiopia EIMS) */
    {
        /* ewtp_sig_verify (libewtp) agrees with OpenSSL on RSA-SHA512 */
        const unsigned char *sig, *der;
        size_t sig_len, der_len;
        assert_int_equal(
            ewtp_keys_sign(k, "rsa", EWTP_SIGN_RSA_SHA512, "abc", 3, f->a, &sig, &sig_len), 0);
        assert_int_equal(ewtp_keys_cert(k, "rsa", f->a, &der, &der_len), 0);
        assert_int_equal(
            ewtp_sig_verify(der, der_len, EWTP_SIGN_RSA_SHA512, "abc", 3, sig, sig_len), 0);
        assert_int_not_equal(
            ewtp_sig_verify(der, der_len, EWTP_SIGN_RSA_SHA256, "abc", 3, sig, sig_len), 0);
    }
    sign_and_check(f, k, "sm2", EWTP_SIGN_SM2_SM3);
    sign_and_check(f, k, "ecsm2", EWTP_SIGN_SM2_SM3);
    sign_and_check(f, k, "ec", EWTP_SIGN_ECDSA_SHA256);
    assert_false(ewtp_keys_is_test(k, "rsa"));

    const unsigned char *sig;
    size_t sig_len;
    assert_int_equal(ewtp_keys_sign(k, "rsa", EWTP_SIGN_SM2_SM3, "x", 1, f->a, &sig, &sig_len),
                     -EWTP_EUNSUPP);
    assert_int_equal(ewtp_keys_sign(k, "sm2", EWTP_SIGN_ECDSA_SHA256, "x", 1, f->a, &sig, &sig_len),
                     -EWTP_EUNSUPP);
    assert_int_equal(ewtp_keys_sign(k, "none", EWTP_SIGN_RSA_SHA256, "x", 1, f->a, &sig, &sig_len),
                     -EWTP_ENOTFOUND);

    /* Duplicate name, mismatching certificate, missing file, not a key. */
    assert_int_equal(ewtp_keys_add_pem(k, "rsa", path_in(f, "rsa.key"), path_in(f, "rsa.crt"), e),
                     -EWTP_EINVAL);
    assert_int_equal(ewtp_keys_add_pem(k, "bad", path_in(f, "rsa.key"), path_in(f, "sm2.crt"), e),
                     -EWTP_ECRYPTO);
    assert_int_equal(ewtp_keys_add_pem(k, "bad", path_in(f, "nope.key"), path_in(f, "rsa.crt"), e),
                     -EWTP_EIO);
    assert_int_equal(ewtp_keys_add_pem(k, "bad", path_in(f, "rsa.crt"), path_in(f, "rsa.crt"), e),
                     -EWTP_ECRYPTO);
    assert_int_equal(ewtp_errors_count(e), 4);
    assert_true(ewtp_errors_has(e, "", "key"));
    ewtp_errors_free(e);
    ewtp_keys_free(k);
}

static void test_test_identities(void **state)
{
    struct fx *f = *state;
    struct ewtp_keys *k = ewtp_keys_new();
    assert_int_equal(ewtp_keys_add_test(k, "t-rsa", EWTP_KEY_RSA), 0);
    assert_int_equal(ewtp_keys_add_test(k, "t-sm2", EWTP_KEY_SM2), 0);
    assert_int_equal(ewtp_keys_add_test(k, "t-rsa", EWTP_KEY_SM2), -EWTP_EINVAL);
    assert_true(ewtp_keys_is_test(k, "t-rsa"));
    sign_and_check(f, k, "t-rsa", EWTP_SIGN_RSA_SHA256);
    sign_and_check(f, k, "t-sm2", EWTP_SIGN_SM2_SM3);

    /* The certificate says what it is, and the openssl CLI reads it. */
    assert_int_equal(ewtp_keys_write_cert_pem(k, "t-sm2", path_in(f, "t-sm2.pem")), 0);
    assert_int_equal(sh(f, "openssl x509 -in t-sm2.pem -noout -subject | grep -q "
                           "'CN *= *ewtp TEST identity - not for production'"),
                     0);
    assert_int_equal(ewtp_keys_write_cert_pem(k, "t-rsa", path_in(f, "t-rsa.pem")), 0);
    assert_int_equal(sh(f, "openssl verify -CAfile t-rsa.pem t-rsa.pem"), 0);
    assert_int_equal(ewtp_keys_write_cert_pem(k, "missing", path_in(f, "x.pem")), -EWTP_ENOTFOUND);

    /* Auto test identities: off by default, then created on first use by family. */
    const unsigned char *sig;
    size_t sig_len;
    assert_int_equal(ewtp_keys_sign(k, "auto", EWTP_SIGN_SM2_SM3, "x", 1, f->a, &sig, &sig_len),
                     -EWTP_ENOTFOUND);
    ewtp_keys_set_auto_test(k, true);
    sign_and_check(f, k, "auto", EWTP_SIGN_SM2_SM3);
    assert_true(ewtp_keys_is_test(k, "auto"));
    assert_int_equal(ewtp_keys_sign(k, "auto", EWTP_SIGN_RSA_SHA256, "x", 1, f->a, &sig, &sig_len),
                     -EWTP_EUNSUPP);

    unsigned char r1[16], r2[16];
    assert_int_equal(ewtp_keys_random(NULL, r1, sizeof(r1)), 0);
    assert_int_equal(ewtp_keys_random(NULL, r2, sizeof(r2)), 0);
    assert_memory_not_equal(r1, r2, sizeof(r1));
    ewtp_keys_free(k);
}

static void test_command_signer(void **state)
{
    struct fx *f = *state;
    struct ewtp_keys *k = ewtp_keys_new();
    struct ewtp_errors *e = ewtp_errors_new();
    const char *cmd = ewtp_arena_printf(
        f->a,
        "test \"$EWTP_SIGN_ALG\" = rsa-sha256 && test \"$EWTP_KEY_NAME\" = card && "
        "openssl dgst -sha256 -sign '%s/rsa.key'",
        f->dir);
    assert_int_equal(ewtp_keys_add_command(k, "card", cmd, path_in(f, "rsa.crt"), 10000, 0, e), 0);
    const char *cmd64 = ewtp_arena_printf(
        f->a, "openssl dgst -sm3 -sign '%s/sm2.key' -sigopt distid:1234567812345678 | base64",
        f->dir);
    assert_int_equal(ewtp_keys_add_command(k, "card64", cmd64, path_in(f, "sm2.crt"), 10000,
                                           EWTP_KEYS_CMD_BASE64, e),
                     0);
    sign_and_check(f, k, "card", EWTP_SIGN_RSA_SHA256);
    sign_and_check(f, k, "card64", EWTP_SIGN_SM2_SM3);

    /* Large input (beyond a pipe buffer) goes through. */
    size_t big = 1 << 20;
    char *data = malloc(big);
    memset(data, 'x', big);
    const unsigned char *sig, *der;
    size_t sig_len, der_len;
    assert_int_equal(
        ewtp_keys_sign(k, "card", EWTP_SIGN_RSA_SHA256, data, big, f->a, &sig, &sig_len), 0);
    assert_int_equal(ewtp_keys_cert(k, "card", f->a, &der, &der_len), 0);
    assert_true(verify_with_cert(der, der_len, EWTP_SIGN_RSA_SHA256, data, big, sig, sig_len));

    /* Wrong family for the certificate; failing, silent, slow and input-ignoring signers. */
    assert_int_equal(ewtp_keys_sign(k, "card", EWTP_SIGN_SM2_SM3, "x", 1, f->a, &sig, &sig_len),
                     -EWTP_EUNSUPP);
    assert_int_equal(ewtp_keys_add_command(k, "fails", "exit 3", NULL, 5000, 0, e), 0);
    assert_int_equal(ewtp_keys_add_command(k, "silent", "cat >/dev/null", NULL, 5000, 0, e), 0);
    assert_int_equal(ewtp_keys_add_command(k, "slow", "sleep 20", NULL, 300, 0, e), 0);
    assert_int_equal(ewtp_keys_add_command(k, "deaf", "printf sig", NULL, 5000, 0, e), 0);
    assert_int_equal(ewtp_keys_sign(k, "fails", EWTP_SIGN_RSA_SHA256, "x", 1, f->a, &sig, &sig_len),
                     -EWTP_ECRYPTO);
    assert_int_equal(
        ewtp_keys_sign(k, "silent", EWTP_SIGN_RSA_SHA256, "x", 1, f->a, &sig, &sig_len),
        -EWTP_ECRYPTO);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ewtp_keys_sign(k, "slow", EWTP_SIGN_RSA_SHA256, "x", 1, f->a, &sig, &sig_len),
                     -EWTP_ECRYPTO);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5); /* killed at the timeout, not after 20 s */
    /* A signer that never reads its input: no SIGPIPE death, its output counts. */
    assert_int_equal(
        ewtp_keys_sign(k, "deaf", EWTP_SIGN_RSA_SHA256, data, big, f->a, &sig, &sig_len), 0);
    assert_int_equal(sig_len, 3);
    assert_memory_equal(sig, "sig", 3);
    assert_int_equal(ewtp_keys_cert(k, "fails", f->a, &der, &der_len), -EWTP_ENOTFOUND);
    assert_int_equal(ewtp_errors_count(e), 0);
    free(data);
    ewtp_errors_free(e);
    ewtp_keys_free(k);
}

struct worker {
    struct ewtp_keys *k;
    int failures;
};

static void *sign_many(void *arg)
{
    struct worker *w = arg;
    struct ewtp_arena *a = ewtp_arena_new();
    for (int i = 0; i < 20; i++) {
        const unsigned char *sig;
        size_t len;
        const char *name = i % 2 ? "t-sm2" : "t-rsa";
        enum ewtp_sign_alg alg = i % 2 ? EWTP_SIGN_SM2_SM3 : EWTP_SIGN_RSA_SHA256;
        if (ewtp_keys_sign(w->k, name, alg, "abc", 3, a, &sig, &len) != 0)
            w->failures++;
        /* Auto identities raced for from several threads end up as one key. */
        if (ewtp_keys_cert(w->k, "shared-auto", a, &sig, &len) != 0)
            w->failures++;
    }
    ewtp_arena_free(a);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct ewtp_keys *k = ewtp_keys_new();
    assert_int_equal(ewtp_keys_add_test(k, "t-rsa", EWTP_KEY_RSA), 0);
    assert_int_equal(ewtp_keys_add_test(k, "t-sm2", EWTP_KEY_SM2), 0);
    ewtp_keys_set_auto_test(k, true);
    struct worker w[3] = {{k, 0}, {k, 0}, {k, 0}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, sign_many, &w[i]), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    ewtp_keys_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pem_keys),
        cmocka_unit_test(test_test_identities),
        cmocka_unit_test(test_command_signer),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
