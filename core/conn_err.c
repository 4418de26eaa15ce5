/*
 * conn_err - names of the CONN_ERR codes and CONN_ACTION flags
 *
 * SYNOPSIS
 *   const char *conn_err_name(int code);
 *   int conn_err_from_name(const char *name);
 *   const char *conn_err_format(int err, char *buf, unsigned bufsize);
 *
 * DESCRIPTION
 *   The table below is the only place that pairs names with values; the
 *   trace, the scenario parser and the docs use it.  conn_err_from_name
 *   accepts both documented spellings (CONN_ERR_X and CONN_ERROR_X) and
 *   the action names, returning the flag value for those.
 */
#include <stdio.h>
#include <string.h>

#include "connection.h"

static const char *const names[CONN_ERR__MAX + 1] = {
    [CONN_ERR_MX_LOOKUP_FAILED] = "CONN_ERR_MX_LOOKUP_FAILED",
    [CONN_ERR_MX_LOOKUP_PENDING] = "CONN_ERR_MX_LOOKUP_PENDING",
    [CONN_ERR_SMTP_NULL_MX] = "CONN_ERR_SMTP_NULL_MX",
    [CONN_ERR_NO_MXS_REACHABLE] = "CONN_ERR_NO_MXS_REACHABLE",
    [CONN_ERR_PROHIBITED_IP] = "CONN_ERR_PROHIBITED_IP",
    [CONN_ERR_HOST_MAX_REACHED] = "CONN_ERR_HOST_MAX_REACHED",
    [CONN_ERR_SOCKET] = "CONN_ERR_SOCKET",
    [CONN_ERR_IOCTL] = "CONN_ERR_IOCTL",
    [CONN_ERR_BIND] = "CONN_ERR_BIND",
    [CONN_ERR_CONNECT] = "CONN_ERR_CONNECT",
    [CONN_ERR_CONNECT_NETWORK] = "CONN_ERR_CONNECT_NETWORK",
    [CONN_ERR_CONNECT_TIMEOUT] = "CONN_ERR_CONNECT_TIMEOUT",
};

/* conn_err_name - the name of a code, or NULL */
const char *conn_err_name(int code)
{
    if (code < 1 || code > CONN_ERR__MAX)
        return NULL;
    return names[code];
}

/* conn_err_from_name - a code or action flag by name; 0 if unknown */
int conn_err_from_name(const char *name)
{
    if (strcmp(name, "CONN_ACTION_REQUEUE1") == 0)
        return CONN_ACTION_REQUEUE1;
    if (strcmp(name, "CONN_ACTION_PURGE_DOMAIN") == 0)
        return CONN_ACTION_PURGE_DOMAIN;
    const char *suffix = NULL;
    if (strncmp(name, "CONN_ERR_", 9) == 0)
        suffix = name + 9;
    else if (strncmp(name, "CONN_ERROR_", 11) == 0)
        suffix = name + 11;
    if (suffix == NULL)
        return 0;
    for (int c = 1; c <= CONN_ERR__MAX; c++)
        if (strcmp(names[c] + 9, suffix) == 0)
            return c;
    return 0;
}

/* conn_err_format - "CONN_ERR_X|CONN_ACTION_Y", or the number if unknown */
const char *conn_err_format(int err, char *buf, unsigned bufsize)
{
    const char *code = conn_err_name(err & CONN_ERR_MASK);
    int n;
    if (code)
        n = snprintf(buf, bufsize, "%s", code);
    else
        n = snprintf(buf, bufsize, "%d", err & CONN_ERR_MASK);
    if (err & CONN_ACTION_REQUEUE1 && n >= 0 && (unsigned)n < bufsize)
        n += snprintf(buf + n, bufsize - (unsigned)n, "|CONN_ACTION_REQUEUE1");
    if (err & CONN_ACTION_PURGE_DOMAIN && n >= 0 && (unsigned)n < bufsize)
        snprintf(buf + n, bufsize - (unsigned)n, "|CONN_ACTION_PURGE_DOMAIN");
    return buf;
}
