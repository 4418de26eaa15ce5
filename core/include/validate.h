/*
 * validate.h - an inbound SMTP session as Momentum 3's inbound hooks see it
 *
 * SYNOPSIS
 *   #include <validate.h>
 *
 *   static void no_strangers(void *closure, accept_construct *ac, validate_context *c)
 *   {
 *       if (ac->remote_addr.sin.sin_addr.s_addr == htonl(0xcb007142))
 *           validate_context_set_code(c, 554, "5.7.1 go away");
 *   }
 *
 * DESCRIPTION
 *   accept_construct: one accepted connection (Momentum 3's
 *   "accept_construct" page), the members mtasim has something behind:
 *     death                  NULL (no Event objects in mtasim)
 *     remote_addr            the client's address and port; an
 *                            ec_sockaddr: the page uses its members sa,
 *                            sin and sin6 (remote_addr.sin for IPv4)
 *     accept_construct_closure.vptr  NULL, the plugins' to use
 *     protocol               6 (IPPROTO_TCP)
 *     conn_id                slot: the virtual second of the accept;
 *                            counter: the descriptor
 *   and mtasim's fd: the session's descriptor (simulated under
 *   mtasim run).  Valid from inc_inbound_connections until
 *   dec_inbound_connections returns.
 *
 *   validate_context: the session's validation state (the
 *   "validate_context" page).  env holds two dictionaries, VCTX_CONN for
 *   the connection and VCTX_MESS for the current message (emptied when a
 *   transaction ends); read and write them with the functions below.
 *     code, note   the reply a provider asks for: validate_context_set_code()
 *                  or set them directly; 0 and NULL when none is asked for
 *     disconnect   1 closes the session after that reply
 *     module_data  the plugins' pointer, NULL at first
 *     tcost        0; session and bag NULL
 *   What mtasim does with code: after validate_connect, a code of 400-599
 *   refuses the session with that reply (then only QUIT is accepted);
 *   after final_validation2 and final_validation, a code of 400-599 refuses
 *   the message with it (see hooks.md for the return values).  The note is
 *   the reply's text after the code ("5.7.1 go away"); without one mtasim
 *   uses "5.7.1 refused by policy" (4.7.1 for a 4xx code).
 *
 *   Keys the core sets (Momentum's validate_auth page names the auth_*):
 *     VCTX_CONN  auth_status  "pass" or "fail" after AUTH
 *                auth_user    the login name
 *                auth_name    the mechanism ("PLAIN" or "LOGIN")
 *     VCTX_MESS  mailfrom     the envelope sender, no brackets
 *
 *   struct ec_auth_info: the documentation names it without members; in
 *   mtasim it holds the login, the mechanism and whether the session was
 *   secure (after STARTTLS).  auth_status (the
 *   validate_auth argument) is EC_AUTH_PASS or EC_AUTH_FAIL: what the user
 *   table and the MailerQ plugins decided.
 *
 *   validate_context_get(c, which, key)       the value, "" when absent
 *   validate_context_exists(c, which, key)    1 or 0
 *   validate_context_exists_and_get(c, which, key, &value)  1 with *value, or 0
 *   validate_context_set(c, which, key, value) create or replace (both
 *       copied); a NULL key or value is ignored; at most VCTX_MAX_KEYS keys
 *       per dictionary, then it is ignored too
 *   validate_context_delete(c, which, key)    remove, if present
 *   validate_context_set_code(c, code, str)   set code and note; returns 0
 *   Dictionaries keep keys in the order they were first set.  The VCTX_*,
 *   EC_AUTH_* and limit values are mtasim's own.
 */
#ifndef MTASIM_VALIDATE_H
#define MTASIM_VALIDATE_H

#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "momentum_types.h"
#include "ec_message.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VCTX_CONN 0
#define VCTX_MESS 1
#define VCTX_MAX_KEYS 64

#define EC_AUTH_FAIL 0
#define EC_AUTH_PASS 1

typedef union ec_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
} ec_sockaddr;

struct _accept_construct {
    Event *death;
    ec_sockaddr remote_addr;
    union _accept_construct_closure {
        void *vptr;
    } accept_construct_closure;
    uint8_t protocol;
    message_id conn_id;
    /* mtasim's own */
    int fd;
};

struct _validate_context {
    Event *session;
    ECDict env[2];
    ec_bag *bag;
    void *module_data;
    int code;
    char *note;
    struct timeval tcost;
    unsigned disconnect:1;
};

struct ec_auth_info {
    const char *user;           /* the login name */
    const char *mechanism;      /* "PLAIN" or "LOGIN" */
    int secure;                 /* 1 when they came over STARTTLS */
};

const char *validate_context_get(validate_context *vctx, int which, const char *key);
int validate_context_exists(validate_context *vctx, int which, const char *key);
int validate_context_exists_and_get(validate_context *vctx, int which, const char *key,
                                    const char **value);
void validate_context_set(validate_context *vctx, int which, const char *key, const char *value);
void validate_context_delete(validate_context *vctx, int which, const char *key);
int validate_context_set_code(validate_context *vctx, int code, const char *str);

#ifdef __cplusplus
}
#endif

#endif
