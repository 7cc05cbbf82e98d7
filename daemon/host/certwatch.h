/* certwatch.h — ewtpd's watch over its certificates (issue 18, certificate lifecycle).
 *
 * A one-second timer on the loop that looks at the current generation's certificates
 * (certs.h): at start, after each reload (a new generation) and every hour it logs each
 * certificate that came within 30, 7 or 1 days of its notAfter (LOG_WARNING) or expired
 * (LOG_ERR), once per threshold crossed; when a successor takes over (`from`) it says so.
 * Listeners and clients switch by themselves at from (they choose by time); a signing key
 * switches with its generation, so when a signing key's from comes the watch starts a reload
 * (retried every minute while it fails), which rebuilds the generation with the successor:
 * deliveries in flight finish with the old key and the certificate that goes with it.
 * The tick itself costs one comparison unless one of those moments came.
 *
 * Loop thread only. */
#ifndef EWTP_CERTWATCH_H
#define EWTP_CERTWATCH_H

struct ewtpd;
struct ewtp_certwatch;

/* Starts the watch on d->base (d->gen must be set) and checks at once. NULL when out of
 * memory (the daemon runs without it). */
struct ewtp_certwatch *ewtp_certwatch_start(struct ewtpd *d);
/* Stops the timer and frees. NULL is a no-op. */
void ewtp_certwatch_free(struct ewtp_certwatch *w);

#endif
