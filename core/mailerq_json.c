/*
 * mailerq_json - MQ_Json: the message as MailerQ's JSON, a json-c object
 *
 * SYNOPSIS
 *   struct json_object *MQ_Json(MQ_Message *message);     (mailerq.h)
 *   mq_json_pull(msg); mq_json_push(msg); mq_json_end(msg);   (mq_internal.h)
 *
 * DESCRIPTION
 *   MailerQ 3.0 (mq_json.md): MQ_Json returns "a struct json_object
 *   pointer ... a data type defined by the json-c library", the JSON
 *   loaded from RabbitMQ (outbound) or to be published to it (inbound);
 *   mq_message.md: MQ_Message "is essentially just a wrapper around" that
 *   JSON, and a plugin may "make modifications to it".
 *
 *   mtasim's messages come from SMTP and its queue, so the JSON is made
 *   on the first MQ_Json call of a callback chain from what the message
 *   is then, with the three fields of MailerQ's minimal message
 *   (send-email.md: "envelope", "recipient", "mime").  While it exists it
 *   and the accessors are one message: a setter (MQ_SetEnvelope, ...)
 *   writes into it (push), a getter and the end of the chain read the
 *   three fields back from it (pull), so a plugin that edits the JSON
 *   changes what is queued or sent, exactly as with the setters.  A field
 *   that is missing or not a string is left as it was.  Other fields a
 *   plugin adds are its own: mtasim has no RabbitMQ to carry them.
 *
 *   The object belongs to the message: it is released (json_object_put)
 *   when the chain is over (mq_json_end), so a plugin must not keep the
 *   pointer past giving control back; the next chain makes a fresh one.
 *
 *   json-c is loaded on the first MQ_Json call (dlopen of its soname,
 *   its functions taken at their symbol version JSONC_0.14), not linked:
 *   json-c and jansson, which the simulator uses for its reports, both
 *   define json_object_get, and an executable linked with both binds its
 *   own unversioned references to whichever comes first.  A plugin links
 *   json-c itself (-ljson-c, as MQ_Json's page says it needs "access to
 *   this JSON library"): its references then carry json-c's version and
 *   reach json-c.  Without json-c installed MQ_Json returns NULL, and an
 *   "mq warning" record says why.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "mq_internal.h"
#include "mta_internal.h"
#include "trace.h"

#define JSONC_SONAME "libjson-c.so.5"
#define JSONC_VERSION "JSONC_0.14"
#define JSONC_TYPE_STRING 6             /* json_type_string of enum json_type */

/* The json-c functions MQ_Json uses (json-c/json_object.h). */
static struct {
    int tried, ok;
    struct json_object *(*new_object)(void);
    struct json_object *(*new_string_len)(const char *, int);
    int (*object_add)(struct json_object *, const char *, struct json_object *);
    int (*object_get_ex)(const struct json_object *, const char *, struct json_object **);
    int (*is_type)(const struct json_object *, int);
    const char *(*get_string)(struct json_object *);
    int (*get_string_len)(const struct json_object *);
    int (*put)(struct json_object *);
} jc;

/* sym - one json-c function at its version (any version if unversioned) */
static void *sym(void *h, const char *name)
{
    void *p = dlvsym(h, name, JSONC_VERSION);
    return p != NULL ? p : dlsym(h, name);
}

/* jsonc_load - json-c's functions, once; 0 when it is not there */
static int jsonc_load(void)
{
    if (jc.tried)
        return jc.ok;
    jc.tried = 1;
    void *h = dlopen(JSONC_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return 0;
    void *p[8] = { sym(h, "json_object_new_object"), sym(h, "json_object_new_string_len"),
                   sym(h, "json_object_object_add"), sym(h, "json_object_object_get_ex"),
                   sym(h, "json_object_is_type"), sym(h, "json_object_get_string"),
                   sym(h, "json_object_get_string_len"), sym(h, "json_object_put") };
    for (int i = 0; i < 8; i++)
        if (p[i] == NULL)
            return 0;
    /* Function pointers from dlsym: POSIX guarantees the conversion. */
    memcpy(&jc.new_object, &p[0], sizeof p[0]);
    memcpy(&jc.new_string_len, &p[1], sizeof p[1]);
    memcpy(&jc.object_add, &p[2], sizeof p[2]);
    memcpy(&jc.object_get_ex, &p[3], sizeof p[3]);
    memcpy(&jc.is_type, &p[4], sizeof p[4]);
    memcpy(&jc.get_string, &p[5], sizeof p[5]);
    memcpy(&jc.get_string_len, &p[6], sizeof p[6]);
    memcpy(&jc.put, &p[7], sizeof p[7]);
    jc.ok = 1;
    return 1;
}

static const char *const keys[] = { "envelope", "recipient", "mime" };

/* field - the message's string and length for key i */
static void field_get(const MQ_Message *m, int i, const char **s, size_t *len)
{
    switch (i) {
    case 0: *s = m->envelope ? m->envelope : ""; *len = strlen(*s); return;
    case 1: *s = m->recipient ? m->recipient : ""; *len = strlen(*s); return;
    default: *s = m->mime ? m->mime : ""; *len = m->mime ? m->mime_len : 0; return;
    }
}

struct json_object *MQ_Json(MQ_Message *message)
{
    if (message == NULL)
        return NULL;
    if (!jsonc_load()) {
        if (mta_tracing()) {
            struct mta_tb tb;
            mta_tb_begin(&tb, "mq", "warning");
            mta_tb_str(&tb, "plugin", mq_plugin_name(mq_active));
            mta_tb_str(&tb, "call", "MQ_Json");
            mta_tb_str(&tb, "what", "json-c (" JSONC_SONAME ") cannot be loaded: NULL");
            mta_tb_emit(&tb);
        }
        return NULL;
    }
    if (message->json == NULL) {
        struct json_object *o = jc.new_object();
        if (o == NULL)
            return NULL;
        message->json = o;
        mq_json_push(message);
    }
    return message->json;
}

/* mq_json_push - the message's three fields into its JSON, if it has one */
void mq_json_push(MQ_Message *m)
{
    if (m->json == NULL)
        return;
    for (int i = 0; i < 3; i++) {
        const char *s;
        size_t len;
        field_get(m, i, &s, &len);
        struct json_object *v = jc.new_string_len(s, (int)len);
        if (v != NULL)
            jc.object_add(m->json, keys[i], v);
    }
}

/* mq_json_pull - what a plugin wrote into the JSON, back into the message */
void mq_json_pull(MQ_Message *m)
{
    if (m->json == NULL)
        return;
    for (int i = 0; i < 3; i++) {
        struct json_object *v;
        if (!jc.object_get_ex(m->json, keys[i], &v) || !jc.is_type(v, JSONC_TYPE_STRING))
            continue;
        const char *s = jc.get_string(v);
        size_t len = (size_t)jc.get_string_len(v);
        const char *cur;
        size_t curlen;
        field_get(m, i, &cur, &curlen);
        if (len == curlen && memcmp(s, cur, len) == 0)
            continue;
        switch (i) {
        case 0: mq_set_own(&m->envelope_own, &m->envelope, s, strnlen(s, len)); break;
        case 1: mq_set_own(&m->recipient_own, &m->recipient, s, strnlen(s, len)); break;
        default:
            mq_set_own(&m->mime_own, &m->mime, s, len);
            m->mime_len = len;
            break;
        }
    }
}

/* mq_json_end - the chain is over: pull, then release the JSON */
void mq_json_end(MQ_Message *m)
{
    if (m->json == NULL)
        return;
    mq_json_pull(m);
    jc.put(m->json);
    m->json = NULL;
}

/* mq_json_free - release the JSON without reading it (the message goes) */
void mq_json_free(MQ_Message *m)
{
    if (m->json != NULL)
        jc.put(m->json);
    m->json = NULL;
}
