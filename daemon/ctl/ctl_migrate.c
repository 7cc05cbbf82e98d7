/* ewtpctl migrate-store --from sqlite:PATH --to conninfo_file:FILE [--without-evidence]
 *
 * A hub that outgrows one node moves its SQLite store into PostgreSQL (store_pg.c does the
 * copy: every table, the evidence included, in one transaction, ids and accept order kept, an
 * empty target only). --without-evidence leaves the evidence in the file (a smaller copy, when
 * the file is kept as the archive of what was sent).
 * ewtpd must be stopped while it runs; afterwards its configuration says
 * store = { backend = "postgresql"; conninfo_file = "FILE"; }. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ewtp/errors.h>

#include "ctl.h"
#include "store.h"

int ctl_migrate_store(int argc, char **argv)
{
    const char *from = NULL, *to = NULL;
    bool without_evidence = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--without-evidence") == 0)
            without_evidence = true;
        else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            from = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else
            return ctl_usage_error("migrate-store: unexpected argument \"%s\" (usage: ewtpctl "
                                   "migrate-store --from sqlite:PATH --to conninfo_file:FILE "
                                   "[--without-evidence])",
                                   argv[i]);
    }
    if (!from || strncmp(from, "sqlite:", 7) != 0 || !from[7])
        return ctl_usage_error("migrate-store: --from sqlite:PATH is required (the SQLite store "
                               "file of a stopped ewtpd)");
    if (!to || strncmp(to, "conninfo_file:", 14) != 0 || !to[14])
        return ctl_usage_error("migrate-store: --to conninfo_file:FILE is required (the file "
                               "with the libpq connection string, as store.conninfo_file)");
    char *conninfo = NULL, *why = NULL;
    int rc = ewtp_store_pg_conninfo_read(to + 14, &conninfo, &why);
    uint64_t rows = 0, left = 0;
    if (rc == 0)
        rc = ewtp_store_pg_import_sqlite(from + 7, conninfo, without_evidence, &rows, &left, &why);
    if (conninfo)
        memset(conninfo, 0, strlen(conninfo));
    free(conninfo);
    if (rc < 0) {
        fprintf(stderr, "ewtpctl migrate-store: %s\n", why ? why : ewtp_strerror(rc));
        free(why);
        return 2;
    }
    printf("migrated %" PRIu64 " rows from %s into PostgreSQL; set store = { backend = "
           "\"postgresql\"; conninfo_file = \"%s\"; } and start ewtpd\n",
           rows, from + 7, to + 14);
    if (left)
        printf("%" PRIu64 " evidence entries stay in %s (--without-evidence): keep that file, "
               "bundles from PostgreSQL will not hold them\n",
               left, from + 7);
    return 0;
}
