/* admin.h — the admin socket of ewtpd (ewtpctl's side is ctl_admin.c).
 *
 * A Unix stream socket (config admin_socket; mode 0660, group ewtpd when that group
 * exists). One request per connection: a single line of JSON {"cmd": ..., ...}; the answer is
 * a single line of JSON {"ok": true, ...} or {"ok": false, "error": "..."}, then the daemon
 * closes. Commands:
 *   {"cmd":"status"}                    generation, uptime, counts by plugin and state,
 *                                       queue depth, oldest pending age
 *   {"cmd":"reload","wait":bool}        as SIGHUP; with wait the answer comes when the new
 *                                       generation is in use or refused (with the reasons)
 *   {"cmd":"messages","state":S,"limit":N,"after":C}   every tenant's messages in state S
 *   {"cmd":"replay","id":ID[,"tenant":T]}   dead -> accepted
 *   {"cmd":"retry-now","id":ID[,"tenant":T]} retrying -> due now
 *   {"cmd":"plugins"}                   name, version, ABI, file, SHA-256 per instance
 * Without "tenant", the id must name exactly one message (of any tenant) in the state the
 * command needs. Store work runs on the workers; the loop never blocks. Loop thread only.
 */
#ifndef EWTP_ADMIN_H
#define EWTP_ADMIN_H

#include "daemon.h"

struct ewtp_errors;

struct ewtp_admin;

/* Binds the socket (an existing stale socket file is replaced). 0 or a negative code with
 * the reason in why. */
int ewtp_admin_start(struct ewtpd *d, const char *path, struct ewtp_admin **out,
                     struct ewtp_errors *why);
/* Closes the socket and removes its file; answers in flight are dropped. NULL-safe. */
void ewtp_admin_free(struct ewtp_admin *a);

#endif
