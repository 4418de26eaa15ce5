/*
 * parse_world - the scenario parser's world directives
 *
 * DESCRIPTION
 *   The directives that describe the world and what is fed into it:
 *   scenario, description, seed, epoch, run, config (through the core's
 *   mta_config_set), network, binding, plugin (found now through
 *   plugin_path.c, loaded at run time) and requires.  The dns directive
 *   is parse_dns.c's, inject parse_inject.c's.
 *
 *   Part of the parser: parse.c describes the language and the files,
 *   parse_internal.h what they share.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "parse_internal.h"
#include "plugin_path.h"

/* once - a setting that may appear only once */
int once(struct parser *p, struct scn_pos *seen, const char *what)
{
    if (seen->line != 0)
        return fail_tok(p, &p->tok[0], "'%s' given twice (first at %s:%d)", what, seen->file,
                        seen->line);
    *seen = here(p, p->tok[0].col);
    return 0;
}

/* do_scenario - scenario NAME */
int do_scenario(struct parser *p)
{
    if (need_args(p, 2, 2, "scenario NAME") < 0 || once(p, &p->seen_scenario, "scenario") < 0
        || check_name(p, &p->tok[1], "scenario name", "._-/") < 0)
        return -1;
    free(p->sc->name);
    p->sc->name = xstrdup(p->tok[1].text);
    return 0;
}

/* do_description - description "TEXT" (or the rest of the line) */
int do_description(struct parser *p)
{
    if (need_args(p, 2, -1, "description \"TEXT\"") < 0)
        return -1;
    free(p->sc->description);
    p->sc->description = extract_text(p, p->tok[1].start, p->tok[p->ntok - 1].end);
    return 0;
}

/* do_seed - seed N */
int do_seed(struct parser *p)
{
    unsigned long long v;
    if (need_args(p, 2, 2, "seed N") < 0 || once(p, &p->seen_seed, "seed") < 0
        || parse_unsigned(p, &p->tok[1], "seed", 0, UINT64_MAX, &v) < 0)
        return -1;
    p->sc->seed = v;
    p->sc->seed_set = 1;
    return 0;
}

/* digits_at - n decimal digits at s as a number; -1 if not all digits */
static int digits_at(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* do_epoch - epoch 2020-03-26T00:00:00Z | epoch 2020-03-26 (UTC) */
int do_epoch(struct parser *p)
{
    if (need_args(p, 2, 2, "epoch YYYY-MM-DDTHH:MM:SSZ") < 0 || once(p, &p->seen_epoch, "epoch") < 0)
        return -1;
    const struct token *t = &p->tok[1];
    const char *s = t->text;
    size_t n = strlen(s);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ok = !t->quoted && (n == 10 || n == 20) && s[4] == '-' && s[7] == '-';
    int year = ok ? digits_at(s, 4) : -1, mon = ok ? digits_at(s + 5, 2) : -1;
    int day = ok ? digits_at(s + 8, 2) : -1, hour = 0, min = 0, sec = 0;
    if (ok && n == 20) {
        ok = s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == 'Z';
        hour = digits_at(s + 11, 2);
        min = digits_at(s + 14, 2);
        sec = digits_at(s + 17, 2);
    }
    ok = ok && year >= 1970 && year <= 9999 && mon >= 1 && mon <= 12 && day >= 1 && day <= 31
         && hour >= 0 && hour <= 23 && min >= 0 && min <= 59 && sec >= 0 && sec <= 59;
    time_t when = 0;
    if (ok) {
        tm.tm_year = year - 1900;
        tm.tm_mon = mon - 1;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = min;
        tm.tm_sec = sec;
        when = timegm(&tm);
        /* timegm normalizes 2020-02-30 into March; a round trip catches it. */
        struct tm back;
        ok = when != (time_t)-1 && gmtime_r(&when, &back) != NULL && back.tm_mday == day
             && back.tm_mon == mon - 1;
    }
    if (!ok)
        return fail_tok(p, t, "bad epoch '%s': expected a UTC time like 2020-03-26T00:00:00Z "
                        "or a date like 2020-03-26", s);
    p->sc->epoch = (mta_usec_t)when * USEC_S;
    return 0;
}

/* do_run - run for DUR */
int do_run(struct parser *p)
{
    if (p->ntok >= 2 && !is_word(&p->tok[1], "for"))
        return fail_tok(p, &p->tok[1], "unexpected '%s': expected 'run for DURATION'", p->tok[1].text);
    if (need_args(p, 3, 3, "run for DURATION") < 0)
        return -1;
    if (once(p, &p->seen_run, "run for") < 0)
        return -1;
    return parse_duration(p, &p->tok[2], &p->sc->run_for);
}

/* do_liveness - liveness storm N/DURATION | liveness storm off (liveness.h) */
int do_liveness(struct parser *p)
{
    const char *usage = "liveness storm COUNT/DURATION | liveness storm off";
    if (need_args(p, 3, 3, usage) < 0)
        return -1;
    if (!is_word(&p->tok[1], "storm"))
        return fail_tok(p, &p->tok[1], "unknown liveness check '%s': expected '%s'",
                        p->tok[1].text, usage);
    const struct token *t = &p->tok[2];
    if (is_word(t, "off")) {
        p->sc->storm_count = 0;
        return 0;
    }
    const char *slash = t->quoted ? NULL : strchr(t->text, '/');
    unsigned long long n = 0;
    int ok = slash != NULL && slash > t->text;
    for (const char *c = t->text; ok && c < slash; c++) {
        ok = isdigit((unsigned char)*c) && n < 1000000;
        n = n * 10 + (unsigned long long)(*c - '0');
    }
    mta_usec_t window = ok ? mta_parse_duration(slash + 1) : -1;
    if (!ok || n < 1 || n > 1000000 || window <= 0)
        return fail_tok(p, t, "bad storm limit '%s': expected COUNT/DURATION like 100/1m "
                        "(COUNT from 1 to 1000000), or off", t->text);
    p->sc->storm_count = (int)n;
    p->sc->storm_window = window;
    return 0;
}

/* do_config - config KEY VALUE, through mta_config_set */
int do_config(struct parser *p)
{
    if (need_args(p, 3, 3, "config KEY VALUE") < 0)
        return -1;
    const struct token *key = &p->tok[1], *value = &p->tok[2];
    int known = 0;
    for (int i = 0; mta_config_keys[i] != NULL; i++)
        known |= strcasecmp(mta_config_keys[i], key->text) == 0;
    char why[256];
    if (mta_config_set(&p->sc->config, key->text, value->text, why, sizeof why) < 0)
        return fail_tok(p, known ? value : key, "%s", why);
    return 0;
}

/* network_link - network link SRC DST [latency D] [jitter D] [bandwidth B] [segment N] [loss P] */
static int network_link(struct parser *p)
{
    const char *usage = "network link SRC DST [latency DURATION] [jitter DURATION] "
                        "[bandwidth RATE] [segment N] [loss P]";
    struct scn_scenario *sc = p->sc;
    struct scn_link l;
    memset(&l, 0, sizeof l);
    l.latency = l.jitter = -1;
    l.bandwidth = UINT64_MAX;
    l.segment = -1;
    l.loss_ppm = -1;
    if (need_args(p, 6, 14, usage) < 0 || parse_ip(p, &p->tok[2], &l.src) < 0
        || parse_ip(p, &p->tok[3], &l.dst) < 0)
        return -1;
    if (mta_ip_is_v4(l.src) != mta_ip_is_v4(l.dst))
        return fail_tok(p, &p->tok[3], "a link joins two addresses of one family: %s is %s, %s is not",
                        p->tok[2].text, mta_ip_is_v4(l.src) ? "IPv4" : "IPv6", p->tok[3].text);
    for (int i = 4; i < p->ntok; i += 2) {
        const struct token *key = &p->tok[i];
        if (i + 1 == p->ntok)
            return fail_at(p, after_last(p), "missing value after '%s'", key->text);
        unsigned long long seg;
        uint32_t ppm;
        int rc = is_word(key, "latency") ? parse_duration(p, &p->tok[i + 1], &l.latency)
               : is_word(key, "jitter") ? parse_duration(p, &p->tok[i + 1], &l.jitter)
               : is_word(key, "bandwidth") ? parse_rate(p, &p->tok[i + 1], &l.bandwidth)
               : is_word(key, "segment") ? parse_unsigned(p, &p->tok[i + 1], "segment", 1,
                                                           SCN_MSS_MAX, &seg)
               : is_word(key, "loss") ? parse_probability(p, &p->tok[i + 1], &ppm)
               : fail_tok(p, key, "unexpected '%s': expected '%s'", key->text, usage);
        if (rc < 0)
            return -1;
        if (is_word(key, "segment"))
            l.segment = (long)seg;
        if (is_word(key, "loss"))
            l.loss_ppm = (long)ppm;
    }
    for (int i = 0; i < sc->nlinks; i++)
        if (mta_ip_eq(sc->links[i].src, l.src) && mta_ip_eq(sc->links[i].dst, l.dst))
            return fail_tok(p, &p->tok[2], "link %s %s already declared at %s:%d", p->tok[2].text,
                            p->tok[3].text, sc->links[i].pos.file, sc->links[i].pos.line);
    if (sc->nlinks == SCN_MAX_REMOTES)
        return fail_tok(p, &p->tok[0], "more than %d links", SCN_MAX_REMOTES);
    l.pos = here(p, p->tok[0].col);
    grow((void **)&sc->links, sc->nlinks, sizeof *sc->links);
    sc->links[sc->nlinks++] = l;
    return 0;
}

/* do_network - network max_fds N | sndbuf SIZE | rcvbuf SIZE | link ... */
int do_network(struct parser *p)
{
    const char *usage = "network max_fds N | network sndbuf|rcvbuf SIZE | network link SRC DST ...";
    if (need_args(p, 2, -1, usage) < 0)
        return -1;
    if (is_word(&p->tok[1], "link"))
        return network_link(p);
    if (is_word(&p->tok[1], "sndbuf") || is_word(&p->tok[1], "rcvbuf")) {
        /* The MTA's own socket buffers (SO_SNDBUF, SO_RCVBUF). */
        int snd = is_word(&p->tok[1], "sndbuf");
        uint64_t v;
        if (need_args(p, 3, 3, snd ? "network sndbuf SIZE" : "network rcvbuf SIZE") < 0
            || parse_size(p, &p->tok[2], snd ? "send buffer" : "receive buffer", SCN_BUF_MIN,
                          SCN_BUF_MAX, &v) < 0)
            return -1;
        *(snd ? &p->sc->mta_sndbuf : &p->sc->mta_rcvbuf) = (long)v;
        return 0;
    }
    if (!is_word(&p->tok[1], "max_fds"))
        return fail_tok(p, &p->tok[1], "unknown network setting '%s': expected max_fds, sndbuf, "
                        "rcvbuf or link", p->tok[1].text);
    unsigned long long n;
    if (need_args(p, 3, 3, "network max_fds N") < 0
        || parse_unsigned(p, &p->tok[2], "descriptor count", 1, 65535, &n) < 0)
        return -1;
    p->sc->max_fds = (int)n;
    return 0;
}

/* do_binding - binding NAME ADDR [ehlo HOSTNAME]; "default" may be redefined */
int do_binding(struct parser *p)
{
    const char *usage = "binding NAME ADDR [ehlo HOSTNAME] [unavailable]";
    struct scn_scenario *sc = p->sc;
    if (need_args(p, 3, 6, usage) < 0 || check_name(p, &p->tok[1], "binding name", "._-") < 0)
        return -1;
    mta_ip addr = mta_ip_v4(0);     /* set by parse_ip; -O3 cannot see it */
    if (parse_ip(p, &p->tok[2], &addr) < 0)
        return -1;
    const char *ehlo = NULL;
    int unavailable = 0;
    for (int i = 3; i < p->ntok; i++) {
        if (is_word(&p->tok[i], "ehlo") && ehlo == NULL) {
            if (i + 1 >= p->ntok)
                return need_args(p, i + 2, i + 2, usage);
            if (check_domain(p, &p->tok[i + 1], "EHLO name") < 0)
                return -1;
            ehlo = p->tok[++i].text;
        } else if (is_word(&p->tok[i], "unavailable") && !unavailable) {
            unavailable = 1;
        } else {
            return fail_tok(p, &p->tok[i], "unexpected '%s': expected '%s'", p->tok[i].text, usage);
        }
    }
    int slot = -1;
    for (int i = 0; i < sc->nbindings; i++)
        if (strcmp(sc->bindings[i].name, p->tok[1].text) == 0)
            slot = i;
    if (slot >= 0 && strcmp(p->tok[1].text, "default") != 0)
        return fail_tok(p, &p->tok[1], "binding '%s' already declared at %s:%d", p->tok[1].text,
                        sc->bindings[slot].pos.file, sc->bindings[slot].pos.line);
    if (slot < 0) {
        if (sc->nbindings == SCN_MAX_BINDINGS)
            return fail_tok(p, &p->tok[0], "more than %d bindings", SCN_MAX_BINDINGS);
        grow((void **)&sc->bindings, sc->nbindings, sizeof *sc->bindings);
        slot = sc->nbindings++;
    }
    struct scn_binding *b = &sc->bindings[slot];
    free(b->name);
    free(b->ehlo);
    b->name = xstrdup(p->tok[1].text);
    b->addr = addr;
    b->ehlo = ehlo ? xstrdup(ehlo) : NULL;
    b->unavailable = unavailable;
    b->pos = here(p, p->tok[0].col);
    return 0;
}

/* do_plugin - plugin PATH[:ARGS]: a shared object to load before the run
 *
 * The file must exist now, so a typo is a parse error at the path rather
 * than a failed run; whether it loads is only known at run time. */
int do_plugin(struct parser *p)
{
    struct scn_scenario *sc = p->sc;
    if (need_args(p, 2, 2, "plugin PATH[:ARGS]") < 0)
        return -1;
    const struct token *t = &p->tok[1];
    if (sc->nplugins == PLUGIN_MAX)
        return fail_tok(p, t, "more than %d plugins", PLUGIN_MAX);
    char *name, *args;
    plugin_spec_split(t->text, &name, &args);
    char why[256];
    char *file = plugin_resolve(name, p->file, why, sizeof why);
    if (file == NULL) {
        fail_tok(p, t, "cannot find plugin '%s': %s", name, why);
        free(name);
        free(args);
        return -1;
    }
    grow((void **)&sc->plugins, sc->nplugins, sizeof *sc->plugins);
    struct scn_plugin *pl = &sc->plugins[sc->nplugins++];
    pl->name = name;
    pl->file = file;
    pl->args = args;
    pl->pos = here(p, t->col);
    return 0;
}

/* do_requires - requires faketime: plugin clocks must show virtual time
 *
 * Only recorded here: whether libfaketime is there is known when the
 * scenario runs (runner.c fails it with exit code 2 when it is not). */
int do_requires(struct parser *p)
{
    if (need_args(p, 2, 2, "requires faketime") < 0)
        return -1;
    const struct token *t = &p->tok[1];
    if (!is_word(t, "faketime")) {
        struct suggestion sg;
        char hint[128];
        suggest_begin(&sg, t->text);
        suggest_offer(&sg, "faketime");
        return fail_tok(p, t, "unknown requirement '%s': expected 'faketime'%s", t->text,
                        suggest_hint(&sg, hint, sizeof hint));
    }
    p->sc->requires_faketime = 1;
    p->sc->requires_pos = here(p, t->col);
    return 0;
}
