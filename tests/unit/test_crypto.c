/* Unit tests for sdk/src/crypto.c: digests, hex, Base64, UUIDs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ewtp/crypto.h>
#include <ewtp/errors.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

static const char *hex_digest(struct ewtp_arena *a, enum ewtp_digest_alg alg, const char *s)
{
    unsigned char md[EWTP_DIGEST_MAX];
    size_t n = 0;
    assert_int_equal(ewtp_digest(alg, s, strlen(s), md, &n), 0);
    assert_int_equal(n, ewtp_digest_size(alg));
    return ewtp_hex_encode(a, md, n);
}

static void test_digests(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    /* FIPS 180 and GB/T 32905 example vectors. */
    assert_string_equal(hex_digest(a, EWTP_DIGEST_SHA1, "abc"),
                        "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_string_equal(hex_digest(a, EWTP_DIGEST_SHA256, "abc"),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_string_equal(hex_digest(a, EWTP_DIGEST_SM3, "abc"),
                        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
    assert_string_equal(hex_digest(a, EWTP_DIGEST_SHA256, ""),
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* SM3 of the 64-byte "abcd"x16 example. */
    char abcd[65] = "";
    for (int i = 0; i < 16; i++)
        strcat(abcd, "abcd");
    assert_string_equal(hex_digest(a, EWTP_DIGEST_SM3, abcd),
                        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
    unsigned char md[EWTP_DIGEST_MAX];
    size_t n;
    assert_int_equal(ewtp_digest((enum ewtp_digest_alg)99, "x", 1, md, &n), -EWTP_EINVAL);
    assert_int_equal(ewtp_digest_size((enum ewtp_digest_alg)99), 0);
    ewtp_arena_free(a);
}

static void test_hex(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    const unsigned char b[] = {0x00, 0x01, 0xab, 0xff};
    assert_string_equal(ewtp_hex_encode(a, b, 4), "0001abff");
    assert_string_equal(ewtp_hex_encode(a, b, 0), "");
    unsigned char *out;
    size_t n;
    assert_int_equal(ewtp_hex_decode(a, "0001ABff", 8, &out, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(out, b, 4);
    assert_int_equal(ewtp_hex_decode(a, "abc", 3, &out, &n), -EWTP_EFORMAT);
    assert_int_equal(ewtp_hex_decode(a, "zz", 2, &out, &n), -EWTP_EFORMAT);
    ewtp_arena_free(a);
}

/* RFC 4648 §10 test vectors, both ways. */
static void test_base64_rfc4648(void **state)
{
    (void)state;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    struct ewtp_arena *a = ewtp_arena_new();
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(ewtp_base64_encode(a, plain[i], strlen(plain[i])), enc[i]);
        assert_string_equal(
            ewtp_base64_encode_ex(a, plain[i], strlen(plain[i]), EWTP_BASE64_URL, 0), url[i]);
        unsigned char *out;
        size_t n;
        assert_int_equal(ewtp_base64_decode(a, enc[i], strlen(enc[i]), 0, &out, &n), 0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(out, plain[i], n);
        assert_int_equal(out[n], '\0');
        assert_int_equal(ewtp_base64_decode(a, url[i], strlen(url[i]), EWTP_BASE64_URL, &out, &n),
                         0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(out, plain[i], n);
    }
    ewtp_arena_free(a);
}

static void test_base64_strict(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    unsigned char *out;
    size_t n;
    static const char *const bad[] = {
        "Zg",       /* missing padding (standard alphabet) */
        "Zg=",      /* short padding */
        "Zg===",    /* too much padding */
        "Zh==",     /* non-zero unused bits */
        "Zm9v\n",   /* whitespace without the flag */
        "Zm9v!A==", /* bad character */
        "Zg==Zg==", /* data after padding */
        "Z",        /* one dangling character */
        "Zm-_",     /* URL alphabet in standard mode */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ewtp_base64_decode(a, bad[i], strlen(bad[i]), 0, &out, &n), -EWTP_EFORMAT);
    const char *wrapped = "Zm9v\r\nYmFy\n";
    assert_int_equal(
        ewtp_base64_decode(a, wrapped, strlen(wrapped), EWTP_BASE64_ALLOW_WS, &out, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(out, "foobar", 6);
    /* Line wrapping on encode. */
    assert_string_equal(ewtp_base64_encode_ex(a, "foobarfoobar", 12, 0, 8), "Zm9vYmFy\nZm9vYmFy");
    assert_string_equal(ewtp_base64_encode_ex(a, "foobarf", 7, 0, 4), "Zm9v\nYmFy\nZg==");
    ewtp_arena_free(a);
}

static int fake_random(void *ctx, void *buf, size_t len)
{
    unsigned char *b = buf;
    unsigned *counter = ctx;
    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)(0xff - i - *counter);
    (*counter)++;
    return 0;
}

static void test_uuid(void **state)
{
    (void)state;
    char u[EWTP_UUID_STRLEN];
    /* RFC 4122 / Python uuid.uuid5(NAMESPACE_DNS, "www.example.com"). */
    assert_int_equal(ewtp_uuid_v5(EWTP_UUID_NS_DNS, "www.example.com", 15, u), 0);
    assert_string_equal(u, "2ed6657d-e927-568b-95e1-2665a8aea6a2");
    assert_int_equal(ewtp_uuid_v5(EWTP_UUID_NS_URL, "urn:ewtp:uuid-namespace", 23, u), 0);
    char ns[EWTP_UUID_STRLEN];
    ewtp_uuid_format(EWTP_UUID_NS_EWTP, ns);
    assert_string_equal(u, ns); /* our namespace is what the header says it is */
    assert_string_equal(ns, "beb6c14b-2764-5ecf-8d12-e63427f8c96a");

    unsigned char b[16];
    assert_int_equal(ewtp_uuid_parse("6BA7B810-9dad-11d1-80b4-00c04fd430c8", b), 0);
    assert_memory_equal(b, EWTP_UUID_NS_DNS, 16);
    assert_int_equal(ewtp_uuid_parse("6ba7b8109dad-11d1-80b4-00c04fd430c8x", b), -EWTP_EFORMAT);
    assert_int_equal(ewtp_uuid_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c", b), -EWTP_EFORMAT);

    /* v4: version nibble 4, variant 10xx, everything else from the random bytes. */
    unsigned char r[16];
    memset(r, 0xff, sizeof(r));
    ewtp_uuid_v4_from(r, u);
    assert_string_equal(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    memset(r, 0x00, sizeof(r));
    ewtp_uuid_v4_from(r, u);
    assert_string_equal(u, "00000000-0000-4000-8000-000000000000");

    unsigned counter = 0;
    struct ewtp_host h = {.size = sizeof(h), .ctx = &counter, .random = fake_random};
    char u2[EWTP_UUID_STRLEN];
    assert_int_equal(ewtp_uuid_v4(&h, u), 0);
    assert_int_equal(ewtp_uuid_v4(&h, u2), 0);
    assert_int_equal(counter, 2);
    assert_string_not_equal(u, u2);
    assert_int_equal(u[14], '4');
    assert_true(strchr("89ab", u[19]) != NULL);
    struct ewtp_host none = {.size = sizeof(none)};
    assert_int_equal(ewtp_uuid_v4(&none, u), -EWTP_EUNSUPP);
}

/* A self-signed certificate (DER, malloc'd) for key. */
static unsigned char *self_signed(EVP_PKEY *key, const EVP_MD *md, size_t *len)
{
    X509 *x = X509_new();
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"ewtp test", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, key, md) > 0);
    unsigned char *der = NULL;
    int n_der = i2d_X509(x, &der);
    assert_true(n_der > 0);
    X509_free(x);
    *len = (size_t)n_der;
    return der;
}

static size_t sign_with(EVP_PKEY *key, const EVP_MD *md, const char *data, unsigned char *sig,
                        size_t max)
{
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(mc, NULL, md, NULL, key), 1);
    size_t n = max;
    assert_int_equal(EVP_DigestSign(mc, sig, &n, (const unsigned char *)data, strlen(data)), 1);
    EVP_MD_CTX_free(mc);
    return n;
}

static void test_sig_verify(void **state)
{
    (void)state;
    const char *data = "<Invoice>the transformed document</Invoice>";
    unsigned char sig[512];
    /* RSA PKCS#1 v1.5 with SHA-256 and SHA-1 (MyInvois, older GACC). */
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(rsa);
    size_t cert_len = 0;
    unsigned char *cert = self_signed(rsa, EVP_sha256(), &cert_len);
    size_t n = sign_with(rsa, EVP_sha256(), data, sig, sizeof(sig));
    assert_int_equal(
        ewtp_sig_verify(cert, cert_len, EWTP_SIGN_RSA_SHA256, data, strlen(data), sig, n), 0);
    /* Another text, a flipped bit, a cut signature, the wrong digest: no. */
    assert_int_equal(
        ewtp_sig_verify(cert, cert_len, EWTP_SIGN_RSA_SHA256, data, strlen(data) - 1, sig, n),
        -EWTP_ECRYPTO);
    sig[7] ^= 1;
    assert_int_equal(
        ewtp_sig_verify(cert, cert_len, EWTP_SIGN_RSA_SHA256, data, strlen(data), sig, n),
        -EWTP_ECRYPTO);
    sig[7] ^= 1;
    assert_int_equal(
        ewtp_sig_verify(cert, cert_len, EWTP_SIGN_RSA_SHA256, data, strlen(data), sig, n - 1),
        -EWTP_ECRYPTO);
    assert_int_equal(
        ewtp_sig_verify(cert, cert_len, EWTP_SIGN_RSA_SHA1, data, strlen(data), sig, n),
        -EWTP_ECRYPTO);
    size_t n1 = sign_with(rsa, EVP_sha1(), data, sig, sizeof(sig));
    assert_int_equal(
        ewtp_sig_verify(cert, cert_len, EWTP_SIGN_RSA_SHA1, data, strlen(data), sig, n1), 0);
    /* An RSA key does not make ECDSA or SM2 signatures. */
    assert_int_equal(
        ewtp_sig_verify(cert, cert_len, EWTP_SIGN_ECDSA_SHA256, data, strlen(data), sig, n1),
        -EWTP_EUNSUPP);
    assert_int_equal(
        ewtp_sig_verify(cert, cert_len, EWTP_SIGN_SM2_SM3, data, strlen(data), sig, n1),
        -EWTP_EUNSUPP);
    /* Not a certificate; trailing bytes; NULL. */
    assert_int_equal(ewtp_sig_verify((const unsigned char *)"junk", 4, EWTP_SIGN_RSA_SHA256, data,
                                     strlen(data), sig, n1),
                     -EWTP_EFORMAT);
    unsigned char *longer = malloc(cert_len + 1);
    memcpy(longer, cert, cert_len);
    longer[cert_len] = 0;
    assert_int_equal(
        ewtp_sig_verify(longer, cert_len + 1, EWTP_SIGN_RSA_SHA1, data, strlen(data), sig, n1),
        -EWTP_EFORMAT);
    free(longer);
    assert_int_equal(ewtp_sig_verify(NULL, 0, EWTP_SIGN_RSA_SHA1, data, strlen(data), sig, n1),
                     -EWTP_EINVAL);
    OPENSSL_free(cert);
    EVP_PKEY_free(rsa);

    /* ECDSA P-256. */
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ec);
    cert = self_signed(ec, EVP_sha256(), &cert_len);
    n = sign_with(ec, EVP_sha256(), data, sig, sizeof(sig));
    assert_int_equal(
        ewtp_sig_verify(cert, cert_len, EWTP_SIGN_ECDSA_SHA256, data, strlen(data), sig, n), 0);
    assert_int_equal(
        ewtp_sig_verify(cert, cert_len, EWTP_SIGN_RSA_SHA256, data, strlen(data), sig, n),
        -EWTP_EUNSUPP);
    OPENSSL_free(cert);
    EVP_PKEY_free(ec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digests),        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_base64_rfc4648), cmocka_unit_test(test_base64_strict),
        cmocka_unit_test(test_uuid),           cmocka_unit_test(test_sig_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
