/*
 * trace_bin_format - the binary trace's constants and varints (docs/trace-format.md)
 *
 * DESCRIPTION
 *   Shared by the writer (trace_bin_write.h) and the reader
 *   (trace_bin_read.h), so that both sides agree on every byte and bound:
 *   the magic and version, the block tags, the field flags, the limits the
 *   reader enforces, and the LEB128 / zigzag varint encoders.  The format
 *   itself is documented byte by byte in docs/trace-format.md; a change
 *   here is a change there and a new TBIN_VERSION.
 */
#ifndef MTASIM_SIM_TRACE_BIN_FORMAT_H
#define MTASIM_SIM_TRACE_BIN_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "mtasim_env.h"

/* 0x89 first (a file passed through 7-bit transport loses it), then CR LF
 * and ^Z LF (newline translation shows): the PNG idea. */
#define TBIN_MAGIC "\x89MTB\r\n\x1a\n"
#define TBIN_MAGIC_LEN 8
#define TBIN_VERSION 1
#define TBIN_HEADER_LEN (TBIN_MAGIC_LEN + 1)

/* Block tags: a record's tag is its number of fields. */
#define TBIN_TAG_REC_MAX MTA_TRACE_MAX_FIELDS    /* 0x00..0x10: a record */
#define TBIN_TAG_RUN 0x20                        /* a run starts: its epoch */
#define TBIN_TAG_TEXT 0x21                       /* a text line, shown as is */
#define TBIN_TAG_END 0x22                        /* the file is complete: the last byte */

/* A string reference: 0 = a new interned string follows, 1 = a literal
 * (not interned) follows, n >= 2 = interned string n - 2. */
#define TBIN_REF_NEW 0
#define TBIN_REF_LITERAL 1
#define TBIN_REF_FIRST_ID 2

/* Field flags. */
#define TBIN_F_HAS_NUM 0x01     /* the field carries a number */
#define TBIN_F_NUM_TEXT 0x02    /* its text is the number's decimal form: not stored */
#define TBIN_F_ALL (TBIN_F_HAS_NUM | TBIN_F_NUM_TEXT)

/* Bounds, per run (between two run blocks). */
#define TBIN_MAX_IDS 65536              /* interned strings */
#define TBIN_MAX_NAME 256               /* bytes of an interned string; longer go literal */
#define TBIN_MAX_STR (16u << 20)        /* bytes of any string: value, literal, text line */
#define TBIN_VARINT_MAX 10              /* bytes of a 64-bit LEB128 varint */

/* tbin_put_uv - v as LEB128 at p; the bytes written (1..10) */
static inline size_t tbin_put_uv(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static inline uint64_t tbin_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t tbin_unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

#endif
