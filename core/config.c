/*
 * config - the core's configuration: defaults and the scenario spelling
 *
 * SYNOPSIS
 *   #include "mta.h"
 *
 *   void mta_config_defaults(struct mta_config *cfg);
 *   int mta_config_set(struct mta_config *cfg, const char *key,
 *                      const char *value, char *err, size_t errsz);
 *   extern const char *const mta_config_keys[];
 *   mta_usec_t mta_parse_duration(const char *s);
 *
 * DESCRIPTION
 *   One table row per option (name, kind, where it lives in struct
 *   mta_config, smallest and largest accepted value, default) is the only
 *   place an option is described; the defaults, the parser, the key list
 *   and "did you mean" all read it.  Adding an option is one struct field
 *   and one row.
 *
 *   mta_config_defaults() fills every field with the documented default
 *   (the Momentum defaults from API-NOTES, Postfix's SMTP client timeouts).
 *
 *   mta_config_set() sets one option.  Keys are matched case-insensitively
 *   against the struct field names (Max_Outbound_Connections works, as it
 *   is written in the Momentum documentation).  Values:
 *     duration  a number and a unit us, ms, s, m, h or d ("40ms", "1.5s");
 *               a bare number means seconds.  The result must be a whole
 *               number of microseconds.
 *     count     a whole decimal number; max_retries also takes "auto" (0).
 *     choice    one of the option's words, case-insensitive (rcpt_552
 *               transient|permanent, recipient_limit_leftovers
 *               resend|defer, dsn_generation on|off).
 *   Nothing is changed when the value is rejected.
 *
 *   mta_parse_duration() is the duration syntax on its own, for the
 *   scenario parser and the CLI.
 *
 * DIAGNOSTICS
 *   mta_config_set() returns -1 and writes one line (no trailing newline)
 *   into err: "unknown config key 'x'" with "; did you mean 'y'?" when a
 *   known key is within two edits, or what was wrong with the value and
 *   what was expected.  mta_parse_duration() returns -1 for anything it
 *   does not accept: empty, a sign, garbage, an unknown unit, a fraction
 *   finer than a microsecond; MTA_DURATION_TOO_LONG for more than
 *   MTA_DURATION_MAX (100 years), the bound that keeps every sum of
 *   durations and the epoch within mta_usec_t.
 */
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mta.h"

#define USEC_PER_MS 1000LL
#define USEC_PER_S MTA_USEC_PER_SEC

enum config_kind {
    CONFIG_DURATION,        /* mta_usec_t */
    CONFIG_COUNT,           /* int */
    CONFIG_COUNT_OR_AUTO,   /* int; "auto" = 0 */
    CONFIG_RATE,            /* struct mta_rate: "N/DURATION", "0" or "none" = unlimited */
    CONFIG_CIDRS,           /* the prohibited list: "A.B.C.D/N,...", "none" = empty */
    CONFIG_CHOICE,          /* int: the index of one of the option's words */
    CONFIG_TLS,             /* tls_policy: "LEVEL" (the default) or "DOMAIN=LEVEL" */
};

struct config_option {
    const char *name;
    enum config_kind kind;
    size_t offset;
    int64_t minimum;        /* usec for durations */
    int64_t maximum;
    int64_t default_value;
    const char *const *words;   /* CONFIG_CHOICE: the values, NULL-terminated */
};

#define DURATION(field, min, def) \
    { #field, CONFIG_DURATION, offsetof(struct mta_config, field), (min), INT64_MAX, (def), NULL }
#define COUNT(field, min, max, def) \
    { #field, CONFIG_COUNT, offsetof(struct mta_config, field), (min), (max), (def), NULL }
#define CHOICE(field, words, def) \
    { #field, CONFIG_CHOICE, offsetof(struct mta_config, field), 0, 0, (def), (words) }

/* The words of the choice options, in the order of their enum values (mta.h). */
static const char *const words_552[] = { "transient", "permanent", NULL };
static const char *const words_leftovers[] = { "resend", "defer", NULL };
static const char *const words_on_off[] = { "off", "on", NULL };
static const char *const words_tls_failure[] = { "defer", "bounce", NULL };
/* TLS levels by value (mta_tls.h), then Postfix's names for the same. */
static const char *const words_tls[] = { "none", "opportunistic", "required", "verify",
                                         "none", "may", "encrypt", "verify", NULL };

/*
 * Minimums keep the simulation finite: a zero retry interval or scan
 * interval would make the event loop spin at one virtual instant.  Zero is
 * allowed where it has a documented meaning (0 = unlimited / auto / expire
 * at the first failure / do not cache).
 */
static const struct config_option options[] = {
    COUNT(max_outbound_connections, 1, INT_MAX, 32),
    DURATION(retry_interval, 1, 1200 * USEC_PER_S),
    DURATION(max_retry_interval, 1, 43200 * USEC_PER_S),
    DURATION(message_expiration, 0, 86400 * USEC_PER_S),
    { "max_retries", CONFIG_COUNT_OR_AUTO, offsetof(struct mta_config, max_retries),
      0, INT_MAX, 0, NULL },
    COUNT(mx_failures_to_delay, 1, INT_MAX, 50),
    DURATION(host_failure_retry, 1, 120 * USEC_PER_S),
    DURATION(connect_timeout, 1, 300 * USEC_PER_S),
    DURATION(idle_timeout, 0, 5 * USEC_PER_S),
    COUNT(max_deliveries_per_connection, 0, INT_MAX, 0),
    DURATION(delayed_queue_scan_interval, 1 * USEC_PER_MS, 15 * USEC_PER_S),
    DURATION(dns_cache_ttl_max, 0, 86400 * USEC_PER_S),
    DURATION(timeout_banner, 1, 300 * USEC_PER_S),
    DURATION(timeout_ehlo, 1, 300 * USEC_PER_S),
    DURATION(timeout_mail, 1, 300 * USEC_PER_S),
    DURATION(timeout_rcpt, 1, 300 * USEC_PER_S),
    DURATION(timeout_data, 1, 120 * USEC_PER_S),
    DURATION(timeout_data_transfer, 1, 180 * USEC_PER_S),
    DURATION(timeout_dot, 1, 600 * USEC_PER_S),
    DURATION(timeout_quit, 1, 300 * USEC_PER_S),
    COUNT(smtp_port, 1, 65535, 25),
    COUNT(max_connections_per_binding, 0, INT_MAX, 0),
    COUNT(max_connections_per_host, 0, INT_MAX, 0),
    { "throttle_connections", CONFIG_RATE, offsetof(struct mta_config, throttle_connections), 0, 0, 0,
      NULL },
    { "throttle_messages", CONFIG_RATE, offsetof(struct mta_config, throttle_messages), 0, 0, 0,
      NULL },
    { "prohibited_ips", CONFIG_CIDRS, 0, 0, 0, 0, NULL },
    COUNT(max_recipients_per_transaction, 0, INT_MAX, 0),
    CHOICE(rcpt_552, words_552, MTA_552_TRANSIENT),
    CHOICE(recipient_limit_leftovers, words_leftovers, MTA_LEFTOVERS_RESEND),
    CHOICE(dsn_generation, words_on_off, 1),
    { "tls_policy", CONFIG_TLS, offsetof(struct mta_config, tls_policy), 0, 0, 0, NULL },
    CHOICE(tls_required_failure, words_tls_failure, MTA_TLS_FAIL_DEFER),
};
#define NOPTIONS ((int)(sizeof options / sizeof options[0]))

const char *const mta_config_keys[] = {
    "max_outbound_connections", "retry_interval", "max_retry_interval",
    "message_expiration", "max_retries", "mx_failures_to_delay",
    "host_failure_retry", "connect_timeout", "idle_timeout",
    "max_deliveries_per_connection", "delayed_queue_scan_interval",
    "dns_cache_ttl_max", "timeout_banner", "timeout_ehlo", "timeout_mail",
    "timeout_rcpt", "timeout_data", "timeout_data_transfer", "timeout_dot",
    "timeout_quit", "smtp_port", "max_connections_per_binding", "max_connections_per_host",
    "throttle_connections", "throttle_messages", "prohibited_ips",
    "max_recipients_per_transaction", "rcpt_552", "recipient_limit_leftovers", "dsn_generation",
    "tls_policy", "tls_required_failure",
    NULL,
};

/* Duration units; a suffix is compared whole, so "ms" never reads as "m". */
static const struct duration_unit {
    const char *name;
    int64_t usec;
} units[] = {
    { "us", 1 },
    { "ms", USEC_PER_MS },
    { "s", USEC_PER_S },
    { "m", 60 * USEC_PER_S },
    { "h", 3600 * USEC_PER_S },
    { "d", 86400 * USEC_PER_S },
};

/* field_int - the int a count option lives in */
static int *field_int(struct mta_config *cfg, const struct config_option *o)
{
    assert(o->kind != CONFIG_DURATION);
    return (int *)((char *)cfg + o->offset);
}

/* field_usec - the mta_usec_t a duration option lives in */
static mta_usec_t *field_usec(struct mta_config *cfg, const struct config_option *o)
{
    assert(o->kind == CONFIG_DURATION);
    return (mta_usec_t *)((char *)cfg + o->offset);
}

/* mta_config_defaults - every option at its documented default */
void mta_config_defaults(struct mta_config *cfg)
{
    assert(cfg != NULL);
    /* The key list and the table must describe the same options. */
    assert(sizeof mta_config_keys / sizeof mta_config_keys[0] == (size_t)NOPTIONS + 1);
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < NOPTIONS; i++) {
        const struct config_option *o = &options[i];
        assert(strcmp(o->name, mta_config_keys[i]) == 0);
        if (o->kind == CONFIG_DURATION)
            *field_usec(cfg, o) = o->default_value;
        else if (o->kind == CONFIG_COUNT || o->kind == CONFIG_COUNT_OR_AUTO ||
                 o->kind == CONFIG_CHOICE || o->kind == CONFIG_TLS)
            *field_int(cfg, o) = (int)o->default_value;
        /* Rates default to unlimited (zeroed above). */
    }
    /* Never connect to loopback: a domain whose MX points there would loop. */
    cfg->nprohibited = 1;
    cfg->prohibited[0] = (struct mta_cidr){ 0x7f000000u, 0xff000000u };
}

/* parse_decimal - a run of digits into *out; the end, or NULL on overflow */
static const char *parse_decimal(const char *s, int64_t *out, int *ndigits)
{
    int64_t v = 0;
    int n = 0;
    while (isdigit((unsigned char)*s)) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
        s++;
        n++;
    }
    *out = v;
    *ndigits = n;
    return s;
}

/* mta_parse_duration - "40ms", "1.5s", "300" (seconds) into microseconds */
mta_usec_t mta_parse_duration(const char *s)
{
    if (s == NULL)
        return -1;
    int64_t whole, frac = 0;
    int nwhole, nfrac = 0;
    const char *p = parse_decimal(s, &whole, &nwhole);
    if (p == NULL || nwhole == 0)
        return -1;
    if (*p == '.') {
        /* At most 6 fraction digits: "1.000001s" is as fine as time gets,
         * and frac < 10^6 keeps frac * unit (unit <= 8.64e10) in range. */
        p = parse_decimal(p + 1, &frac, &nfrac);
        if (p == NULL || nfrac == 0 || nfrac > 6)
            return -1;
    }
    int64_t unit = USEC_PER_S;          /* a bare number means seconds */
    if (*p != '\0') {
        unit = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcmp(p, units[i].name) == 0)
                unit = units[i].usec;
        if (unit == 0)
            return -1;
    }
    if (whole > MTA_DURATION_MAX / unit)
        return MTA_DURATION_TOO_LONG;
    int64_t usec = whole * unit;
    if (nfrac > 0) {
        int64_t scale = 1;
        for (int i = 0; i < nfrac; i++)
            scale *= 10;
        /* frac < scale, so the part is less than one unit.  Insist on a
         * whole microsecond rather than rounding silently. */
        int64_t product = frac * unit;
        if (product % scale != 0)
            return -1;
        int64_t part = (int64_t)(product / scale);
        usec += part;       /* both are at most MTA_DURATION_MAX */
    }
    return usec > MTA_DURATION_MAX ? MTA_DURATION_TOO_LONG : usec;
}

/* mta_edit_distance - Levenshtein distance, case-insensitive, when it is at
 * most max; otherwise max + 1 (also past 64 characters): the "did you mean"
 * of every error message, which only wants near misses.  The bound lets it
 * stop early: the lengths alone differ by more than max, or a whole row of
 * the table is past max (a row's minimum never decreases). */
int mta_edit_distance(const char *a, const char *b, int max)
{
    enum { MAXLEN = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (max < 0)
        max = 0;
    if (la > MAXLEN || lb > MAXLEN || (la > lb ? la - lb : lb - la) > (size_t)max)
        return max + 1;
    int row[MAXLEN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        int lowest = row[0];
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
            if (best < lowest)
                lowest = best;
        }
        if (lowest > max)
            return max + 1;
    }
    return row[lb] > max ? max + 1 : row[lb];
}

/* closest_key - the known key nearest to key, if it is a likely typo */
static const char *closest_key(const char *key)
{
    const char *best = NULL;
    int best_d = INT_MAX;
    for (int i = 0; mta_config_keys[i] != NULL; i++) {
        int d = mta_edit_distance(key, mta_config_keys[i], 2);
        if (d < best_d) {
            best_d = d;
            best = mta_config_keys[i];
        }
    }
    /* Two edits catch transpositions and a missing underscore; more would
     * suggest unrelated keys for short typos. */
    return best_d <= 2 && (size_t)best_d < strlen(key) ? best : NULL;
}

/* set_error - format the one-line reason; tolerate a missing buffer */
static int set_error(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_error(char *err, size_t errsz, const char *fmt, ...)
{
    if (err != NULL && errsz > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* describe_usec - a duration as the shortest exact "Nunit" */
static void describe_usec(int64_t usec, char *buf, size_t bufsz)
{
    for (int i = (int)(sizeof units / sizeof units[0]) - 1; i >= 0; i--)
        if (usec != 0 && usec % units[i].usec == 0) {
            snprintf(buf, bufsz, "%lld%s", (long long)(usec / units[i].usec), units[i].name);
            return;
        }
    snprintf(buf, bufsz, "%lldus", (long long)usec);
}

/* mta_config_set - set one option from its scenario spelling */
static const char *parse_decimal(const char *s, int64_t *out, int *ndigits);

/* set_rate - "N/DURATION" (N events per sliding window), "0" or "none" */
static int set_rate(struct mta_config *cfg, const struct config_option *o, const char *value,
                    char *err, size_t errsz)
{
    struct mta_rate *r = (struct mta_rate *)((char *)cfg + o->offset);
    if (strcmp(value, "0") == 0 || strcasecmp(value, "none") == 0) {
        r->count = 0;
        r->per = 0;
        return 0;
    }
    const char *slash = strchr(value, '/');
    int64_t n;
    int ndigits;
    const char *end = slash ? parse_decimal(value, &n, &ndigits) : NULL;
    mta_usec_t per = slash ? mta_parse_duration(slash + 1) : -1;
    if (end != slash || ndigits == 0 || n < 1 || n > INT_MAX || per <= 0)
        return set_error(err, errsz, "bad rate '%s' for %s: expected COUNT/DURATION like 10/1m, "
                         "or none", value, o->name);
    r->count = (int)n;
    r->per = per;
    return 0;
}

/* set_cidrs - a comma-separated list of IPv4 ranges A.B.C.D/N, or "none" */
static int set_cidrs(struct mta_config *cfg, const char *value, char *err, size_t errsz)
{
    struct mta_config tmp = *cfg;
    tmp.nprohibited = 0;
    if (strcasecmp(value, "none") == 0) {
        *cfg = tmp;
        return 0;
    }
    const char *p = value;
    while (*p) {
        size_t len = strcspn(p, ",");
        char one[40];
        if (len == 0 || len >= sizeof one)
            return set_error(err, errsz, "bad address range in '%s': expected A.B.C.D/N[,...]", value);
        memcpy(one, p, len);
        one[len] = '\0';
        unsigned a, b, c, d, bits = 32;
        char extra;
        int k = sscanf(one, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &bits, &extra);
        if ((k != 4 && k != 5) || a > 255 || b > 255 || c > 255 || d > 255 || bits > 32 ||
            (k == 4 && strchr(one, '/')))
            return set_error(err, errsz, "bad address range '%s': expected A.B.C.D/N", one);
        if (tmp.nprohibited == MTA_MAX_PROHIBITED)
            return set_error(err, errsz, "more than %d prohibited ranges", MTA_MAX_PROHIBITED);
        uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
        uint32_t addr = (a << 24) | (b << 16) | (c << 8) | d;
        tmp.prohibited[tmp.nprohibited++] = (struct mta_cidr){ addr & mask, mask };
        p += len;
        if (*p == ',')
            p++;
    }
    *cfg = tmp;
    return 0;
}

/* tls_word - the level a tls_policy word names, or -1 */
static int tls_word(const char *w)
{
    for (int i = 0; words_tls[i] != NULL; i++)
        if (strcasecmp(w, words_tls[i]) == 0)
            return i % 4;
    return -1;
}

/* set_tls - "LEVEL" sets the default; "DOMAIN=LEVEL" sets (or replaces) one domain's */
static int set_tls(struct mta_config *cfg, const char *value, char *err, size_t errsz)
{
    const char *eq = strchr(value, '=');
    int level = tls_word(eq ? eq + 1 : value);
    if (level < 0)
        return set_error(err, errsz, "bad TLS level '%s' for tls_policy: expected none, "
                         "opportunistic (may), required (encrypt) or verify, optionally "
                         "after DOMAIN=", eq ? eq + 1 : value);
    if (eq == NULL) {
        cfg->tls_policy = level;
        return 0;
    }
    size_t n = (size_t)(eq - value);
    if (n == 0 || n >= MTA_TLS_DOMAIN_MAX)
        return set_error(err, errsz, "bad domain in tls_policy '%s': expected DOMAIN=LEVEL", value);
    int i = 0;
    while (i < cfg->ntls_domains && !(strlen(cfg->tls_domains[i].domain) == n &&
                                      strncasecmp(cfg->tls_domains[i].domain, value, n) == 0))
        i++;
    if (i == MTA_MAX_TLS_DOMAINS)
        return set_error(err, errsz, "more than %d domains with a tls_policy", MTA_MAX_TLS_DOMAINS);
    memcpy(cfg->tls_domains[i].domain, value, n);
    cfg->tls_domains[i].domain[n] = '\0';
    cfg->tls_domains[i].level = level;
    if (i == cfg->ntls_domains)
        cfg->ntls_domains++;
    return 0;
}

/* mta_config_tls_level - the domain's own level, else the default */
int mta_config_tls_level(const struct mta_config *cfg, const char *domain)
{
    for (int i = 0; i < cfg->ntls_domains; i++)
        if (strcasecmp(cfg->tls_domains[i].domain, domain) == 0)
            return cfg->tls_domains[i].level;
    return cfg->tls_policy;
}

int mta_config_set(struct mta_config *cfg, const char *key, const char *value,
                   char *err, size_t errsz)
{
    assert(cfg != NULL);
    if (key == NULL || value == NULL)
        return set_error(err, errsz, "config needs a key and a value");

    const struct config_option *o = NULL;
    for (int i = 0; i < NOPTIONS && o == NULL; i++)
        if (strcasecmp(key, options[i].name) == 0)
            o = &options[i];
    if (o == NULL) {
        const char *hint = closest_key(key);
        if (hint != NULL)
            return set_error(err, errsz, "unknown config key '%s'; did you mean '%s'?", key, hint);
        return set_error(err, errsz, "unknown config key '%s'", key);
    }

    if (o->kind == CONFIG_DURATION) {
        mta_usec_t v = mta_parse_duration(value);
        if (v == MTA_DURATION_TOO_LONG)
            return set_error(err, errsz, "%s '%s' is too long: at most 36500d (100 years)",
                             o->name, value);
        if (v < 0)
            return set_error(err, errsz,
                             "bad duration '%s' for %s: expected a number with a unit us, ms, s, m, h or d",
                             value, o->name);
        if (v < o->minimum) {
            char least[32];
            describe_usec(o->minimum, least, sizeof least);
            return set_error(err, errsz, "%s must be at least %s, not '%s'", o->name, least, value);
        }
        *field_usec(cfg, o) = v;
        return 0;
    }

    if (o->kind == CONFIG_RATE)
        return set_rate(cfg, o, value, err, errsz);
    if (o->kind == CONFIG_CIDRS)
        return set_cidrs(cfg, value, err, errsz);
    if (o->kind == CONFIG_TLS)
        return set_tls(cfg, value, err, errsz);
    if (o->kind == CONFIG_CHOICE) {
        for (int i = 0; o->words[i] != NULL; i++)
            if (strcasecmp(value, o->words[i]) == 0) {
                *field_int(cfg, o) = i;
                return 0;
            }
        char list[128] = "";
        for (int i = 0; o->words[i] != NULL; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s'%s'",
                     i == 0 ? "" : o->words[i + 1] ? ", " : " or ", o->words[i]);
        return set_error(err, errsz, "bad value '%s' for %s: expected %s", value, o->name, list);
    }
    if (o->kind == CONFIG_COUNT_OR_AUTO && strcasecmp(value, "auto") == 0) {
        *field_int(cfg, o) = 0;
        return 0;
    }
    int64_t v;
    int ndigits;
    const char *end = parse_decimal(value, &v, &ndigits);
    if (end == NULL || ndigits == 0 || *end != '\0' || v > o->maximum || v < o->minimum) {
        const char *also = o->kind == CONFIG_COUNT_OR_AUTO ? " or 'auto'" : "";
        if (o->maximum == INT_MAX)
            return set_error(err, errsz, "bad value '%s' for %s: expected a whole number >= %lld%s",
                             value, o->name, (long long)o->minimum, also);
        return set_error(err, errsz, "bad value '%s' for %s: expected a whole number from %lld to %lld%s",
                         value, o->name, (long long)o->minimum, (long long)o->maximum, also);
    }
    *field_int(cfg, o) = (int)v;
    return 0;
}
