/* log.c — the daemon's clock and log (daemon.h). */
#include "daemon.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>

#include <ewtp/errors.h>

#include <systemd/sd-journal.h>

#include "util.h"

int64_t ewtpd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Under systemd, stderr is a journal stream (JOURNAL_STREAM is set): structured fields go
 * straight to journald. Elsewhere one line on stderr with a "<N>" priority prefix. */
static void log_line(int priority, const char *message_id, const char *msg_id, const char *tenant,
                     const char *plugin, const char *line)
{
    char *safe = ewtp_redact(line);
    const char *text = safe ? safe : line;
    if (getenv("JOURNAL_STREAM") != NULL) {
        char fields[6][2200];
        struct iovec iov[6];
        int n = 0;
        const char *names[] = {"MESSAGE_ID", "EWTP_MSG_ID", "TENANT", "PLUGIN"};
        const char *values[] = {message_id, msg_id, tenant, plugin};
        snprintf(fields[n], sizeof(fields[n]), "MESSAGE=%s", text);
        n++;
        snprintf(fields[n], sizeof(fields[n]), "PRIORITY=%d", priority);
        n++;
        for (int i = 0; i < 4; i++) {
            if (values[i] == NULL)
                continue;
            snprintf(fields[n], sizeof(fields[n]), "%s=%.256s", names[i], values[i]);
            n++;
        }
        for (int i = 0; i < n; i++)
            iov[i] = (struct iovec){.iov_base = fields[i], .iov_len = strlen(fields[i])};
        sd_journal_sendv(iov, n);
    } else {
        fprintf(stderr, "<%d>%s%s%s%s%s%s%s\n", priority, text, msg_id ? " msg=" : "",
                msg_id ? msg_id : "", tenant ? " tenant=" : "", tenant ? tenant : "",
                plugin ? " plugin=" : "", plugin ? plugin : "");
    }
    free(safe);
}

void ewtpd_log(int priority, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_line(priority, NULL, NULL, NULL, NULL, line);
}

void ewtpd_log_msg(int priority, const char *message_id, const char *msg_id, const char *tenant,
                   const char *plugin, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_line(priority, message_id, msg_id, tenant, plugin, line);
}

void ewtpd_log_errors(const char *prefix, const struct ewtp_errors *why)
{
    for (size_t i = 0; i < ewtp_errors_count(why); i++)
        ewtpd_log(LOG_ERR, "%s%s", prefix, ewtp_errors_at(why, i)->message);
}
