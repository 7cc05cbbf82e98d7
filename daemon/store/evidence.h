/* evidence.h — a message's evidence bundle (issue 18, DECISIONS "Packaging and evidence").
 *
 * A tar archive (libarchive) of:
 *   manifest.json  {"format":"ewtp-evidence/1","tenant","id","created_at","entries":[...],
 *                   "head","signature":{"key","algorithm","value"},"certificate"}
 *   evidence/...   each request body of each attempt exactly as sent (after signing) and each
 *                  raw answer, as the store kept them at send time (store.h evidence);
 *   events/...     the state history: each event of the message's log as JSON;
 *   receipts/...   the raw answer of each receipt (and outcome) event, as a file of its own.
 * Each manifest entry {"seq","kind","file","at","sha256","meta","prev","hash"} carries the
 * SHA-256 of its file, prev (the previous entry's hash, "" for the first) and hash: the
 * SHA-256 (hex) of the entry's compact JSON with sorted keys, without "hash". The chain's head
 * (the last hash) is signed with the configured evidence key, whose certificate (PEM) is in the
 * manifest: a recomputed chain does not verify without that key.
 *
 * Building reads the store and signs: call it on a worker, never on the event loop.
 */
#ifndef EWTP_EVIDENCE_H
#define EWTP_EVIDENCE_H

#include <stddef.h>

#include <ewtp/host.h>

struct ewtp_store;

/* The bundle of tenant/id into *out (malloc'd, *out_len bytes), signed by key_name through
 * h's sign/cert. 0; -EWTP_ENOTFOUND (unknown message), -EWTP_EUNSUPP (the store backend keeps
 * no evidence), other negative codes with *why (malloc'd sentence) when not NULL. */
int ewtp_evidence_bundle(struct ewtp_store *st, const struct ewtp_host *h, const char *key_name,
                         const char *tenant, const char *id, int64_t now, unsigned char **out,
                         size_t *out_len, char **why);

/* Checks a bundle: every file's hash, the chain and the head signature with the bundle's
 * certificate. 0 when intact; 1 with *why naming the first entry that breaks (or the
 * signature); a negative code when the bundle cannot be read at all. *why is malloc'd. */
int ewtp_evidence_verify(const void *tar, size_t len, char **why);

#endif
