/*
 * smtp_server_auth - AUTH on the inbound server (RFC 4954, SASL PLAIN and LOGIN)
 *
 * SYNOPSIS
 *   srv_cmd_auth(s, arg);              "AUTH PLAIN|LOGIN [initial-response]"
 *   srv_auth_continuation(s, line);    a line in state SS_AUTH_* (after a 334)
 *
 * DESCRIPTION
 *   After EHLO, outside a transaction, once per session (503 5.5.1
 *   otherwise).  PLAIN takes [authzid] NUL authcid NUL passwd in base64
 *   (RFC 4616), in the command or after "334 "; LOGIN asks for the user
 *   and the password with "334 VXNlcm5hbWU6" and "334 UGFzc3dvcmQ6".
 *   "*" cancels (501 5.7.0); undecodable base64 is 501 5.5.2; another
 *   mechanism 504 5.5.4.
 *
 *   The verdict: mtasim's user table (mta_add_user) decides first; then
 *   the mq_smtp_in_authenticate chain may grant or revoke with
 *   MQ_SetSmtpAuthenticated (MailerQ 3.0: the first plugin sees false);
 *   then a validate_auth provider may still refuse (Momentum 3, with the
 *   auth_status, auth_user and auth_name keys in the validate context).
 *   235 2.7.0, or 535 5.7.8 counted as a client error.  Trace: "inbound
 *   auth conn= user= result=accepted|refused".
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "hooks/core/validate_auth.h"
#include "smtp_server_int.h"
#include "trace.h"

static void after_auth(struct srv_session *s);

/* auth_check - credentials arrived: the user table, then the plugins */
static void auth_check(struct srv_session *s, const char *user, size_t ulen, const char *pass,
                       size_t plen)
{
    struct smtp_server *srv = s->srv;
    int ok = 0;
    for (int i = 0; i < srv->nusers && !ok; i++)
        ok = strlen(srv->users[i].name) == ulen && memcmp(srv->users[i].name, user, ulen) == 0 &&
             strlen(srv->users[i].password) == plen &&
             memcmp(srv->users[i].password, pass, plen) == 0;
    /* MailerQ 3.0, MQ_SmtpAuthenticated: the first plugin "will initially
     * always" see false; the plugins' last MQ_SetSmtpAuthenticated decides.
     * The user table (mtasim's) decides when no plugin set it (after_auth). */
    s->auth_table_ok = ok;
    s->conn.authenticated = 0;
    s->conn.auth_set = 0;
    free(s->login);
    s->login = srv_strndup(user, ulen);
    s->state = SS_COMMAND;
    /* The plugins get the credentials as they came, from the session's
     * own copies: a chain may outlive the input buffer. */
    free(s->password);
    s->password = srv_strndup(pass, plen);
    s->call.str = s->login;
    s->call.len = ulen;
    s->call.str2 = s->password;
    s->call.len2 = plen;
    srv_run_chain(s, MQ_CB_AUTHENTICATE, after_auth);
}

/* after_auth - the verdict: validate_auth may still refuse */
static void after_auth(struct srv_session *s)
{
    if (!s->conn.auth_set)
        s->conn.authenticated = s->auth_table_ok;
    /* The keys Momentum's validate_auth page names, then the hook. */
    int status = s->conn.authenticated ? EC_AUTH_PASS : EC_AUTH_FAIL;
    validate_context_set(&s->v.vc, VCTX_CONN, "auth_status", status == EC_AUTH_PASS ? "pass" : "fail");
    validate_context_set(&s->v.vc, VCTX_CONN, "auth_user", s->login);
    validate_context_set(&s->v.vc, VCTX_CONN, "auth_name", s->auth_mech);
    struct ec_auth_info info = { s->login, s->auth_mech, s->conn.secure };
    if (call_core_validate_auth_hook(&s->v.vc, &info, status) != 0)
        s->conn.authenticated = 0;
    free(s->password);
    s->password = NULL;
    int ok = s->conn.authenticated;
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "inbound", "auth");
        mta_tb_int(&tb, "conn", s->fd);
        mta_tb_str(&tb, "user", s->login);
        mta_tb_str(&tb, "result", ok ? "accepted" : "refused");
        mta_tb_emit(&tb);
    }
    if (ok)
        s->auth_done = 1;
    if (s->plugin_code)
        return;
    if (ok) {
        srv_reply(s, "235 2.7.0 Authentication successful");
    } else {
        srv_reply(s, "535 5.7.8 Error: authentication failed");
        srv_client_error(s);
    }
}

/* auth_plain - the RFC 4616 response: [authzid] NUL authcid NUL passwd */
static void auth_plain(struct srv_session *s, const char *resp)
{
    char buf[SRV_CMD_LINE_MAX];
    long n = base64_decode(resp, buf, sizeof buf);
    const char *nul1 = n > 0 ? memchr(buf, '\0', (size_t)n) : NULL;
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)(buf + n - nul1 - 1)) : NULL;
    if (nul2 == NULL) {
        s->state = SS_COMMAND;
        srv_reply(s, "501 5.5.2 Error: cannot decode the AUTH PLAIN response");
        srv_client_error(s);
        return;
    }
    auth_check(s, nul1 + 1, (size_t)(nul2 - nul1 - 1), nul2 + 1, (size_t)(buf + n - nul2 - 1));
}

/* srv_cmd_auth - AUTH PLAIN|LOGIN [initial response] (RFC 4954 4) */
void srv_cmd_auth(struct srv_session *s, const char *arg)
{
    if (s->helo != 2) {
        srv_reply(s, "503 5.5.1 Error: send EHLO first");
        srv_client_error(s);
        return;
    }
    if (s->auth_done) {
        srv_reply(s, "503 5.5.1 Error: already authenticated");
        srv_client_error(s);
        return;
    }
    if (s->has_mail) {
        srv_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        srv_client_error(s);
        return;
    }
    size_t mlen = strcspn(arg, " ");
    const char *resp = arg[mlen] ? arg + mlen + 1 : NULL;
    s->auth_mech = mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0 ? "LOGIN" : "PLAIN";
    if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
        if (resp == NULL) {
            s->state = SS_AUTH_PLAIN;
            srv_reply(s, "334 ");
            return;
        }
        auth_plain(s, resp);
    } else if (mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
        if (resp == NULL) {
            s->state = SS_AUTH_LOGIN_USER;
            srv_reply(s, "334 VXNlcm5hbWU6");        /* "Username:" */
            return;
        }
        char user[SRV_CMD_LINE_MAX];
        long n = base64_decode(resp, user, sizeof user);
        if (n < 0) {
            srv_reply(s, "501 5.5.2 Error: cannot decode the AUTH LOGIN response");
            srv_client_error(s);
            return;
        }
        free(s->login);
        s->login = srv_strndup(user, (size_t)n);
        s->state = SS_AUTH_LOGIN_PASS;
        srv_reply(s, "334 UGFzc3dvcmQ6");            /* "Password:" */
    } else {
        srv_reply(s, "504 5.5.4 Error: unsupported authentication mechanism");
        srv_client_error(s);
    }
}

/* auth_continuation - a 334 response line from the client */
void srv_auth_continuation(struct srv_session *s, const char *line)
{
    if (strcmp(line, "*") == 0) {
        s->state = SS_COMMAND;
        srv_reply(s, "501 5.7.0 Error: authentication cancelled");
        srv_client_error(s);
        return;
    }
    if (s->state == SS_AUTH_PLAIN) {
        auth_plain(s, line);
        return;
    }
    char buf[SRV_CMD_LINE_MAX];
    long n = base64_decode(line, buf, sizeof buf);
    if (n < 0) {
        s->state = SS_COMMAND;
        srv_reply(s, "501 5.5.2 Error: cannot decode the AUTH LOGIN response");
        srv_client_error(s);
        return;
    }
    if (s->state == SS_AUTH_LOGIN_USER) {
        free(s->login);
        s->login = srv_strndup(buf, (size_t)n);
        s->state = SS_AUTH_LOGIN_PASS;
        srv_reply(s, "334 UGFzc3dvcmQ6");
        return;
    }
    char *user = srv_strdup(s->login);
    auth_check(s, user, strlen(user), buf, (size_t)n);
    free(user);
}

