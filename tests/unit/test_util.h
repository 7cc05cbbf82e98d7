/* test_util.h — small helpers the CMocka unit tests share: a private temporary folder per
 * test and files written into it. Include after <cmocka.h>. */
#ifndef EWTP_TEST_UTIL_H
#define EWTP_TEST_UTIL_H

#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>

/* Makes /tmp/<prefix>-XXXXXX into dir (size bytes). 0, or -1 when it cannot. */
static inline int test_tmpdir_make(char *dir, size_t size, const char *prefix)
{
    snprintf(dir, size, "/tmp/%s-XXXXXX", prefix);
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes dir and everything in it. 0, or -1 when rm failed. */
static inline int test_tmpdir_remove(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to dir/name (the test fails when it cannot). */
static inline void test_write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, 0600); /* secret files must not be readable by others (issue 19) */
}

#endif
