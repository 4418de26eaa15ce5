/*
 * mta_tls.h - the outbound client's TLS policy levels and outcomes
 *
 * DESCRIPTION
 *   What the tls_policy and log_tls_outcome hooks pass (docs/tls.md).
 *   The levels are Postfix's smtp_tls_security_level values the client
 *   models: none, may (opportunistic), encrypt (required) and verify.
 */
#ifndef MTASIM_MTA_TLS_H
#define MTASIM_MTA_TLS_H

/* Policy levels (config tls_policy; the tls_policy hook may change one). */
#define MTA_TLS_NONE            0   /* never STARTTLS (Postfix "none") */
#define MTA_TLS_OPPORTUNISTIC   1   /* STARTTLS when offered; cleartext otherwise
                                     * and after a failed handshake (Postfix "may") */
#define MTA_TLS_REQUIRED        2   /* TLS or no delivery; the certificate is not
                                     * checked (Postfix "encrypt") */
#define MTA_TLS_VERIFY          3   /* required, and the certificate must name the MX
                                     * host, be in date and trusted (Postfix "verify") */

/* Outcomes (log_tls_outcome). */
#define MTA_TLS_OUT_PLAIN       0   /* the session goes on in cleartext, by policy */
#define MTA_TLS_OUT_SECURE      1   /* TLS is up; the certificate was verified */
#define MTA_TLS_OUT_UNVERIFIED  2   /* TLS is up; the certificate was not (or not checked) */
#define MTA_TLS_OUT_NOT_OFFERED 3   /* the server did not offer STARTTLS */
#define MTA_TLS_OUT_REFUSED     4   /* the server answered STARTTLS with other than 220 */
#define MTA_TLS_OUT_HANDSHAKE   5   /* the handshake failed */
#define MTA_TLS_OUT_CERTIFICATE 6   /* the certificate was rejected (verify) */
#define MTA_TLS_OUT_FALLBACK    7   /* cleartext, after a failed handshake with this host */

#endif
