/*
 * dsn_status - RFC 3463 enhanced status codes for recipient outcomes
 *
 * See dsn_status.h.  Pure functions: no core state, so the unit tests
 * (tests/unit/test_dsn.c) call them directly.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "dsn_status.h"

/* digits - the length of the run of 1 to 3 digits at s, or 0 */
static size_t digits(const char *s)
{
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n >= 1 && n <= 3 ? n : 0;
}

/* dsn_status_valid - RFC 3463 section 2: class "." subject "." detail */
int dsn_status_valid(const char *s)
{
    if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    size_t n = digits(s + 2);
    if (n == 0 || s[2 + n] != '.')
        return 0;
    size_t m = digits(s + 3 + n);
    return m > 0 && s[3 + n + m] == '\0';
}

/* put_num - 0..999 as decimal at out; returns the digits written */
static size_t put_num(char *out, int v)
{
    assert(v >= 0 && v <= 999);
    size_t n = 0;
    if (v >= 100)
        out[n++] = (char)('0' + v / 100);
    if (v >= 10)
        out[n++] = (char)('0' + v / 10 % 10);
    out[n++] = (char)('0' + v % 10);
    return n;
}

/* dsn_status_format - "class.subject.detail", or "" when a part is out of range */
void dsn_status_format(int cls, int subject, int detail, char out[DSN_STATUS_MAX])
{
    out[0] = '\0';
    if ((cls != 2 && cls != 4 && cls != 5) || subject < 0 || subject > 999 || detail < 0 ||
        detail > 999)
        return;
    size_t n = put_num(out, cls);
    out[n++] = '.';
    n += put_num(out + n, subject);
    out[n++] = '.';
    n += put_num(out + n, detail);
    out[n] = '\0';
}

/* dsn_status_for_class - s with its class replaced (".0.0" when s says nothing) */
void dsn_status_for_class(const char *s, enum dsn_class cls, char out[DSN_STATUS_MAX])
{
    assert(cls == DSN_CLASS_SUCCESS || cls == DSN_CLASS_TRANSIENT || cls == DSN_CLASS_PERMANENT);
    if (!dsn_status_valid(s))
        s = "0.0.0";
    size_t n = strlen(s);
    assert(n < DSN_STATUS_MAX);     /* valid: at most 9 characters */
    memcpy(out, s, n + 1);
    out[0] = (char)('0' + (int)cls);
}

/* dsn_status_of_reply - the reply's enhanced code, or its class with .0.0 */
void dsn_status_of_reply(int code, int enh_class, int enh_subject, int enh_detail,
                         enum dsn_class cls, char out[DSN_STATUS_MAX])
{
    char given[DSN_STATUS_MAX] = "";
    /* Only a code whose class agrees with the reply counts (Postfix's
     * smtp_chat.c ignores "out-of-protocol" ones the same way). */
    if (code >= 200 && code <= 599 && enh_class == code / 100)
        dsn_status_format(enh_class, enh_subject, enh_detail, given);
    dsn_status_for_class(given, cls, out);
}
