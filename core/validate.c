/*
 * validate - the inbound hooks' accept_construct and validate_context
 *
 * SYNOPSIS
 *   struct mta_vsession v;
 *   vs_init(&v, fd, peer, peer_port, now);        at the accept
 *   call_core_validate_connect_hook(&v.ac, &v.vc);
 *   if (vs_refusal(&v, 554, "5.7.1", reply, sizeof reply)) ...
 *   vs_message_reset(&v);                         a transaction ended
 *   vs_free(&v);                                  the session is freed
 *
 *   (public, validate.h)
 *   validate_context_get, _exists, _exists_and_get, _set, _delete, _set_code
 *
 * DESCRIPTION
 *   Momentum 3's inbound hooks take an accept_construct (the connection)
 *   and a validate_context (the session's validation state: two
 *   dictionaries and the reply a provider asks for).  One mta_vsession per
 *   inbound session holds both and the dictionaries behind env[], for the
 *   session's lifetime; smtp_server.c calls the hooks with them and asks
 *   vs_refusal() what a provider decided.
 *
 *   A dictionary is an array in the order keys were first set, at most
 *   VCTX_MAX_KEYS keys; keys and values are copied.  Nothing here is
 *   iterated in hash or pointer order.
 *
 *   vs_refusal() reads code and note after a hook: a code of 400-599 is a
 *   refusal, written as "CODE NOTE" (the note a provider gave, or the
 *   default text with its class digit made to match the code), and code
 *   and note are cleared for the next decision.  Any other code is no
 *   refusal (a 2xx code cannot turn a refusal into an acceptance either:
 *   mtasim's servers answer those themselves).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta_internal.h"

/* vsession_of - the session behind a plugin's validate_context, or NULL */
static struct mta_vsession *vsession_of(validate_context *vctx)
{
    if (vctx == NULL)
        return NULL;
    struct mta_vsession *v = (struct mta_vsession *)(void *)((char *)vctx -
                                                              offsetof(struct mta_vsession, vc));
    return vctx->env[VCTX_CONN] == (ECDict)(void *)&v->dict[VCTX_CONN] ? v : NULL;
}

static struct vs_dict *dict_of(validate_context *vctx, int which)
{
    struct mta_vsession *v = vsession_of(vctx);
    if (v == NULL || (which != VCTX_CONN && which != VCTX_MESS))
        return NULL;
    return &v->dict[which];
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        mta_panic("validate", "out of memory");
    return p;
}

static int dict_find(const struct vs_dict *d, const char *key)
{
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->key[i], key) == 0)
            return i;
    return -1;
}

static void dict_clear(struct vs_dict *d)
{
    for (int i = 0; i < d->n; i++) {
        free(d->key[i]);
        free(d->value[i]);
    }
    d->n = 0;
}

/* vs_init - a session's construct and context, for an accepted connection */
void vs_init(struct mta_vsession *v, int fd, uint32_t peer, uint16_t peer_port, mta_usec_t now)
{
    memset(v, 0, sizeof *v);
    v->ac.remote_addr.sin.sin_family = AF_INET;
    v->ac.remote_addr.sin.sin_addr.s_addr = htonl(peer);
    v->ac.remote_addr.sin.sin_port = htons(peer_port);
    v->ac.protocol = IPPROTO_TCP;
    v->ac.conn_id.slot = (uint32_t)(now / MTA_USEC_PER_SEC);
    v->ac.conn_id.counter = (uint16_t)fd;
    v->ac.fd = fd;
    v->vc.env[VCTX_CONN] = (ECDict)(void *)&v->dict[VCTX_CONN];
    v->vc.env[VCTX_MESS] = (ECDict)(void *)&v->dict[VCTX_MESS];
}

/* vs_message_reset - the transaction ended: the message dictionary empties */
void vs_message_reset(struct mta_vsession *v)
{
    dict_clear(&v->dict[VCTX_MESS]);
}

void vs_free(struct mta_vsession *v)
{
    dict_clear(&v->dict[VCTX_CONN]);
    dict_clear(&v->dict[VCTX_MESS]);
}

/* vs_refusal - the reply a provider asked for; 0 when none, else its code
 * with "CODE TEXT" in reply.  dflt is the text without one ("5.7.1 ..."). */
int vs_refusal(struct mta_vsession *v, const char *dflt, char *reply, size_t size)
{
    int code = v->vc.code;
    const char *note = v->vc.note;
    v->vc.code = 0;
    v->vc.note = NULL;
    if (code < 400 || code > 599)
        return 0;
    if (note != NULL && note[0] != '\0')
        snprintf(reply, size, "%d %s", code, note);
    else
        snprintf(reply, size, "%d %c%s", code, '0' + code / 100, dflt + 1);
    return code;
}

/* ---- what plugins call (validate.h) ----------------------------------------- */

const char *validate_context_get(validate_context *vctx, int which, const char *key)
{
    const char *value = NULL;
    return validate_context_exists_and_get(vctx, which, key, &value) && value ? value : "";
}

int validate_context_exists(validate_context *vctx, int which, const char *key)
{
    return validate_context_exists_and_get(vctx, which, key, NULL);
}

int validate_context_exists_and_get(validate_context *vctx, int which, const char *key,
                                    const char **value)
{
    struct vs_dict *d = dict_of(vctx, which);
    int i = d != NULL && key != NULL ? dict_find(d, key) : -1;
    if (i < 0)
        return 0;
    if (value)
        *value = d->value[i];
    return 1;
}

void validate_context_set(validate_context *vctx, int which, const char *key, const char *value)
{
    struct vs_dict *d = dict_of(vctx, which);
    if (d == NULL || key == NULL || value == NULL)
        return;
    int i = dict_find(d, key);
    if (i < 0) {
        if (d->n >= VCTX_MAX_KEYS)
            return;
        i = d->n++;
        d->key[i] = xstrdup(key);
        d->value[i] = NULL;
    }
    free(d->value[i]);
    d->value[i] = xstrdup(value);
}

void validate_context_delete(validate_context *vctx, int which, const char *key)
{
    struct vs_dict *d = dict_of(vctx, which);
    int i = d != NULL && key != NULL ? dict_find(d, key) : -1;
    if (i < 0)
        return;
    free(d->key[i]);
    free(d->value[i]);
    memmove(&d->key[i], &d->key[i + 1], (size_t)(d->n - i - 1) * sizeof d->key[0]);
    memmove(&d->value[i], &d->value[i + 1], (size_t)(d->n - i - 1) * sizeof d->value[0]);
    d->n--;
}

int validate_context_set_code(validate_context *vctx, int code, const char *str)
{
    struct mta_vsession *v = vsession_of(vctx);
    if (v == NULL)
        return -1;
    v->vc.code = code;
    snprintf(v->note, sizeof v->note, "%s", str ? str : "");
    v->vc.note = v->note[0] ? v->note : NULL;
    return 0;
}
