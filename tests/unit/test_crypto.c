/* Unit tests for sdk/src/crypto.c: digests, hex, Base64, UUIDs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <ewtp/crypto.h>
#include <ewtp/errors.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digests),        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_base64_rfc4648), cmocka_unit_test(test_base64_strict),
        cmocka_unit_test(test_uuid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
