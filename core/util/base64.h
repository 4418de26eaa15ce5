/*
 * base64 - RFC 4648 base64 decoding (base64.c states the contract)
 */
#ifndef MTASIM_UTIL_BASE64_H
#define MTASIM_UTIL_BASE64_H

#include <stddef.h>

/* in (NUL-terminated) into out, at most outsz bytes: their number, or -1
 * when in is malformed or the result does not fit */
long base64_decode(const char *in, char *out, size_t outsz);

#endif
