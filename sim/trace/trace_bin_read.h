/*
 * trace_bin_read - the binary trace decoded, block by block, bounds checked
 *
 * SYNOPSIS
 *   struct tbin_reader *rd = tbin_reader_create(in, "trace.bin");
 *   struct tbin_item it;
 *   while ((n = tbin_reader_next(rd, &it)) > 0)
 *       ... it.type == TBIN_ITEM_REC: it.rec (its time absolute), it.epoch
 *           it.type == TBIN_ITEM_TEXT: it.text, it.len (no '\n')
 *   if (n < 0) fprintf(stderr, "%s\n", tbin_reader_error(rd));
 *   tbin_reader_destroy(rd);
 *
 * DESCRIPTION
 *   Reads docs/trace-format.md from in, a block at a time through a buffer
 *   that grows to the largest block; the file is never held whole.  An
 *   item (and every string it points to) stays valid until the next call.
 *
 *   Every bound of the format is enforced: the magic and version, known
 *   block tags, a record's field count (at most MTA_TRACE_MAX_FIELDS),
 *   varints of at most 64 bits, string lengths (TBIN_MAX_STR, interned
 *   ones TBIN_MAX_NAME), interned ids defined before use and at most
 *   TBIN_MAX_IDS per run, no NUL in a kind, name or key, known field
 *   flags, a record only inside a run, time (and its distance from the
 *   run's epoch, which the line shows) that does not overflow, and
 *   an end block last: a file cut anywhere, even between two blocks, is
 *   reported truncated.
 *
 * DIAGNOSTICS
 *   tbin_reader_next() returns -1 on the first violation, a truncated
 *   block or a read error, and tbin_reader_error() is then
 *
 *     NAME:RECORD:BYTE: message
 *
 *   RECORD is the line the text trace would have had (1-based: text lines
 *   count, run blocks do not) and BYTE the 1-based offset of the bad byte
 *   from the start of that line's bytes, which begin right after the
 *   previous line's block (so the header and a run block count towards
 *   the line after them).  A truncated file names the byte that is
 *   missing.  After -1 the reader only returns -1.
 */
#ifndef MTASIM_SIM_TRACE_BIN_READ_H
#define MTASIM_SIM_TRACE_BIN_READ_H

#include <stdio.h>

#include "trace_store.h"

enum tbin_item_type { TBIN_ITEM_REC = 1, TBIN_ITEM_TEXT };

struct tbin_item {
    enum tbin_item_type type;
    struct trace_rec rec;           /* TBIN_ITEM_REC */
    mta_usec_t epoch;               /* of the run rec belongs to */
    const char *text;               /* TBIN_ITEM_TEXT: not NUL-terminated */
    size_t len;
};

struct tbin_reader;

struct tbin_reader *tbin_reader_create(FILE *in, const char *name);
int tbin_reader_next(struct tbin_reader *rd, struct tbin_item *it);
const char *tbin_reader_error(const struct tbin_reader *rd);
void tbin_reader_destroy(struct tbin_reader *rd);

#endif
