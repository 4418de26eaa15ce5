/*
 * base64 - RFC 4648 section 4 base64, decoding only
 *
 * SYNOPSIS
 *   #include "base64.h"
 *
 *   long n = base64_decode("AGJvYgBzZWNyZXQ=", buf, sizeof buf);
 *
 * DESCRIPTION
 *   base64_decode() decodes the NUL-terminated text in into out, at most
 *   outsz bytes, and returns how many it wrote.  The text must be whole
 *   quanta of four characters of the base64 alphabet, with '=' padding only
 *   at the very end (RFC 4648 3.3: anything else is malformed): then, and
 *   when the result would not fit, it returns -1.  The SMTP AUTH exchanges
 *   (RFC 4954 4, RFC 4616) are its users.  No state, no allocation.
 */
#include <string.h>

#include "base64.h"

/* b64_value - the value of one base64 character, -1 if none */
static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* base64_decode - RFC 4648 base64 into out (at most outsz bytes); -1 if malformed */
long base64_decode(const char *in, char *out, size_t outsz)
{
    size_t n = strlen(in), o = 0;
    if (n % 4 != 0)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = in[i + k] == '=' ? -2 : b64_value(in[i + k]);
            if (v[k] == -1 || (v[k] == -2 && (i + 4 < n || k < 2)))
                return -1;
        }
        if (v[2] == -2 && v[3] != -2)
            return -1;
        unsigned bits = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 |
                        (unsigned)(v[2] < 0 ? 0 : v[2]) << 6 | (unsigned)(v[3] < 0 ? 0 : v[3]);
        int bytes = v[2] < 0 ? 1 : v[3] < 0 ? 2 : 3;
        if (o + (size_t)bytes > outsz)
            return -1;
        out[o++] = (char)(bits >> 16);
        if (bytes > 1)
            out[o++] = (char)(bits >> 8 & 255);
        if (bytes > 2)
            out[o++] = (char)(bits & 255);
    }
    return (long)o;
}
