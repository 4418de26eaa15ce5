/*
 * fuzz_trace_bin - libFuzzer target: the binary trace reader (sim/trace/trace_bin_read.c)
 *
 * The input is a file for "mtasim trace show".  Oracles, from
 * trace_bin_read.h's contract: every item read has at most
 * MTA_TRACE_MAX_FIELDS fields, and its strings end in a NUL at their
 * length; a rejected file gives one "fuzz:RECORD:BYTE: message" with
 * RECORD the number of lines read so far plus one and BYTE at least 1 and
 * at most one past the input.  A file read to its end is written again by
 * the writer (trace_bin_write.h) and read back: the text lines of both
 * reads are the same, byte for byte.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "trace_bin_read.h"
#include "trace_bin_write.h"
#include "trace_store.h"

/* render_all - the text of every line of data in *t (0), or -1 when the
 * file is rejected (after checking the error's form); with write_again,
 * every item also written to a new file in *again */
static int render_all(const uint8_t *data, size_t size, struct trace_text *t, int write_again,
                      char **again, size_t *again_len)
{
    FILE *in = fmemopen((void *)data, size ? size : 1, "rb");
    if (in == NULL)
        fuzz_fail("fmemopen");
    if (size == 0)
        fseek(in, 0, SEEK_END);     /* fmemopen wants at least one byte */
    FILE *out = write_again ? open_memstream(again, again_len) : NULL;
    if (out)
        tbin_write_header(out);
    struct tbin_writer *w = NULL;
    mta_usec_t epoch = 0, prev = 0, delta;
    int rewritable = 1;         /* no time step the writer's delta cannot hold */
    struct tbin_reader *rd = tbin_reader_create(in, "fuzz");
    struct tbin_item it;
    uint64_t lines = 0;
    int n;
    while ((n = tbin_reader_next(rd, &it)) > 0) {
        lines++;
        if (it.type == TBIN_ITEM_TEXT) {
            char *p = realloc(t->p, t->len + it.len + 2);
            if (p == NULL)
                abort();
            memcpy(p + t->len, it.text, it.len);
            t->len += it.len;
            p[t->len++] = '\n';
            t->p = p;
            t->cap = t->len + 1;
            if (out) {
                tbin_writer_close(w);
                w = NULL;
                tbin_write_text(out, it.text, it.len);
            }
            continue;
        }
        const struct trace_rec *r = &it.rec;
        if (r->nfields < 0 || r->nfields > MTA_TRACE_MAX_FIELDS)
            fuzz_fail("%d fields", r->nfields);
        for (int i = 0; i < r->nfields; i++)
            if (r->field[i].str[r->field[i].len] != '\0')
                fuzz_fail("field %d not NUL-terminated at its length", i);
        trace_text_line(t, r, it.epoch);
        if (out && (w == NULL || it.epoch != epoch)) {
            tbin_writer_close(w);
            w = tbin_writer_create(out, it.epoch);
            epoch = prev = it.epoch;
        }
        /* A text line ends the writer's run here, not the reader's: the
         * next record's time is then relative to the epoch again, a step
         * the file never had to hold.  (mtasim's runs are 400 days at most.) */
        if (out && __builtin_sub_overflow(r->time, prev, &delta))
            rewritable = 0;
        if (out && rewritable)
            tbin_writer_rec(w, r);
        prev = r->time;
    }
    if (n < 0) {
        const char *e = tbin_reader_error(rd);
        uint64_t rec, byte;
        int used = 0;
        if (sscanf(e, "fuzz:%" SCNu64 ":%" SCNu64 ": %n", &rec, &byte, &used) != 2 || used == 0 ||
            e[used] == '\0')
            fuzz_fail("error not FILE:RECORD:BYTE: message: %s", e);
        if (rec != lines + 1 || byte < 1 || byte > size + 1)
            fuzz_fail("error at %" PRIu64 ":%" PRIu64 " after %" PRIu64 " lines of %zu bytes: %s",
                      rec, byte, lines, size, e);
    }
    tbin_reader_destroy(rd);
    fclose(in);
    if (out) {
        tbin_writer_close(w);
        tbin_write_end(out);
        fclose(out);
    }
    return n < 0 ? -1 : rewritable ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *again = NULL;
    size_t again_len = 0;
    struct trace_text t1 = { 0 }, t2 = { 0 };
    if (render_all(data, size, &t1, 1, &again, &again_len) == 0) {
        if (render_all((const uint8_t *)again, again_len, &t2, 0, NULL, NULL) != 0 ||
            t1.len != t2.len || (t1.len && memcmp(t1.p, t2.p, t1.len) != 0))
            fuzz_fail("written again, the file reads as other text");
    }
    free(t1.p);
    free(t2.p);
    free(again);
    return 0;
}
