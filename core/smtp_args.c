/*
 * smtp_args - the ESMTP parameters of one MAIL FROM or RCPT TO command
 *
 * SYNOPSIS
 *   struct mta_args a;
 *   smtp_args_init(&a, strlen("MAIL FROM:<alice@example.com>"));
 *   smtp_client_args_add(&a.pub, "SIZE", "2048");        the core's own
 *   call_core_smtp_client_mailfrom_args_hook(dc, &a.pub); providers add more
 *   smtp_args_render(&a, line + len, sizeof line - len);  " SIZE=2048 ..."
 *
 *   (public, smtp.h)
 *   smtp_client_args_add, smtp_client_args_delete, smtp_client_args_exists_and_fetch
 *
 * DESCRIPTION
 *   Momentum 3 hands smtp_client_mailfrom_args and smtp_client_rcptto_args
 *   providers an smtp_client_args and three functions to change it; the
 *   command then carries what the structure holds.  The core puts its own
 *   parameters in first (SIZE, BODY, RET, ENVID, BY; NOTIFY, ORCPT), so a
 *   provider sees everything the command will carry, and may also remove
 *   or replace the core's.  Parameters keep the order they were first
 *   added in: the command line is a function of the calls made, never of
 *   a hash layout.
 *
 *   What is refused, so that the command stays valid SMTP: a keyword that
 *   is not an esmtp-keyword, a value that is not an esmtp-value (RFC 5321
 *   4.1.2: printable US-ASCII except '=' and space), more than
 *   SMTP_CLIENT_ARGS_MAX parameters, or a line longer than the core builds
 *   (SMTP_LINE_MAX with CRLF; RFC 5321 4.5.3.1.4 lets extensions lengthen
 *   the 512 octets of MAIL and RCPT).  smtp_client_args_add() then
 *   returns non-zero, as its page allows, and changes nothing.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "smtp.h"
#include "smtp_client_int.h"

/* args_of - the core's parameters behind a plugin's pointer, or NULL */
static struct mta_args *args_of(smtp_client_args *args)
{
    if (args == NULL || args->dict != (ECDict)(void *)args)
        return NULL;
    return (struct mta_args *)(void *)args;
}

/* smtp_args_init - no parameters yet; the command before them is base_len long */
void smtp_args_init(struct mta_args *a, size_t base_len)
{
    a->pub.dict = (ECDict)(void *)&a->pub;
    a->pub.len = 0;
    a->base_len = base_len;
}

static int keyword_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n >= SMTP_ARG_KEY_MAX || !isalnum((unsigned char)k[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)k[i]) && k[i] != '-')
            return 0;
    return 1;
}

static int value_ok(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 33 || (unsigned char)*v > 126 || *v == '=')
            return 0;
    return 1;
}

static int find(const struct mta_args *a, const char *key)
{
    for (int i = 0; i < a->pub.len; i++)
        if (strcasecmp(a->v[i].key, key) == 0)
            return i;
    return -1;
}

/* entry_len - what parameter i adds to the line: " KEY" or " KEY=VALUE" */
static size_t entry_len(const char *key, const char *value)
{
    return 1 + strlen(key) + (value[0] ? 1 + strlen(value) : 0);
}

/* line_len - the command's length with every parameter, CRLF excluded */
static size_t line_len(const struct mta_args *a)
{
    size_t n = a->base_len;
    for (int i = 0; i < a->pub.len; i++)
        n += entry_len(a->v[i].key, a->v[i].value);
    return n;
}

int smtp_client_args_add(smtp_client_args *args, const char *extension, const char *value)
{
    struct mta_args *a = args_of(args);
    if (a == NULL || extension == NULL || !keyword_ok(extension))
        return 1;
    if (value == NULL)
        value = "";
    if (strlen(value) >= SMTP_LINE_MAX || !value_ok(value))
        return 1;
    int i = find(a, extension);
    size_t old = i >= 0 ? entry_len(a->v[i].key, a->v[i].value) : 0;
    if (i < 0 && a->pub.len >= SMTP_CLIENT_ARGS_MAX)
        return 1;
    if (line_len(a) - old + entry_len(extension, value) > SMTP_LINE_MAX - 2)
        return 1;
    if (i < 0) {
        i = a->pub.len++;
        strcpy(a->v[i].key, extension);
    }
    strcpy(a->v[i].value, value);
    return 0;
}

void smtp_client_args_delete(smtp_client_args *args, const char *extension)
{
    struct mta_args *a = args_of(args);
    if (a == NULL || extension == NULL)
        return;
    int i = find(a, extension);
    if (i < 0)
        return;
    memmove(&a->v[i], &a->v[i + 1], (size_t)(a->pub.len - i - 1) * sizeof a->v[0]);
    a->pub.len--;
}

int smtp_client_args_exists_and_fetch(smtp_client_args *args, const char *extension,
                                      const char **value)
{
    struct mta_args *a = args_of(args);
    int i = a != NULL && extension != NULL ? find(a, extension) : -1;
    if (i < 0)
        return 0;
    if (value)
        *value = a->v[i].value[0] ? a->v[i].value : NULL;
    return 1;
}

/* smtp_args_render - " KEY=VALUE ..." into out (size bytes, terminated);
 * its length.  It always fits a line of the core's (add() saw to that). */
size_t smtp_args_render(const smtp_client_args *args, char *out, size_t size)
{
    const struct mta_args *a = args_of((smtp_client_args *)args);
    size_t o = 0;
    if (size == 0)
        return 0;
    for (int i = 0; a != NULL && i < a->pub.len; i++) {
        size_t need = entry_len(a->v[i].key, a->v[i].value);
        if (o + need >= size)
            break;
        out[o++] = ' ';
        size_t k = strlen(a->v[i].key);
        memcpy(out + o, a->v[i].key, k);
        o += k;
        if (a->v[i].value[0]) {
            out[o++] = '=';
            size_t v = strlen(a->v[i].value);
            memcpy(out + o, a->v[i].value, v);
            o += v;
        }
    }
    out[o] = '\0';
    return o;
}
