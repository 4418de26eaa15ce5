/*
 * test_trace_bin - the binary trace's writer and reader (sim/trace/
 * trace_bin_write.c, trace_bin_read.c) round trip what the bundled
 * scenarios rarely or never produce: numbers at the edges of 64 bits and
 * texts that only look like numbers, values with NUL and high bytes, empty
 * strings, kinds and keys too long to intern, more distinct keys than a
 * run may intern, a key buffer reused with other text, time that goes
 * backwards, and several runs in one file.  Every record read back must
 * equal the one written, field by field, and render to the same line.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_bin_format.h"
#include "trace_bin_read.h"
#include "trace_bin_write.h"
#include "trace_store.h"

#define EPOCH 1585180800000000LL

/* A record to write and what must come back. */
struct rec {
    mta_usec_t time;
    const char *kind, *name;
    int n;
    struct trace_field f[MTA_TRACE_MAX_FIELDS];
};

static struct trace_field num_field(const char *key, const char *text, int64_t num)
{
    return (struct trace_field){ key, text, strlen(text), num, 1, 0 };     /* klen: as_rec */
}

static struct trace_field text_field(const char *key, const char *text, size_t len)
{
    return (struct trace_field){ key, text, len, 0, 0, 0 };
}

/* as_rec - x as the trace store hands records on: every length measured
 * now (a test may have changed a key's buffer since the field was made) */
static struct trace_rec as_rec(const struct rec *x, struct trace_field f[MTA_TRACE_MAX_FIELDS])
{
    for (int i = 0; i < x->n; i++) {
        f[i] = x->f[i];
        f[i].klen = strlen(f[i].key);
    }
    return (struct trace_rec){ x->time, 0, x->kind, x->name, x->n, f, strlen(x->kind),
                               strlen(x->name) };
}

static void put(struct tbin_writer *w, const struct rec *x)
{
    struct trace_field f[MTA_TRACE_MAX_FIELDS];
    struct trace_rec r = as_rec(x, f);
    tbin_writer_rec(w, &r);
}

static char *line_of(const struct trace_rec *r)
{
    struct trace_text t = { 0 };
    trace_text_line(&t, r, EPOCH);
    return t.p;
}

/* expect - the next item is x, field by field and as a line */
static void expect(struct tbin_reader *rd, const struct rec *x)
{
    struct tbin_item it;
    int n = tbin_reader_next(rd, &it);
    ck_assert_msg(n == 1, "reader: %d %s", n, n < 0 ? tbin_reader_error(rd) : "");
    ck_assert_int_eq(it.type, TBIN_ITEM_REC);
    ck_assert(it.rec.time == x->time);
    ck_assert_str_eq(it.rec.kind, x->kind);
    ck_assert_str_eq(it.rec.name, x->name);
    ck_assert_int_eq(it.rec.nfields, x->n);
    for (int i = 0; i < x->n; i++) {
        const struct trace_field *g = &it.rec.field[i], *f = &x->f[i];
        ck_assert_str_eq(g->key, f->key);
        ck_assert_uint_eq(g->len, f->len);
        ck_assert(memcmp(g->str, f->str, f->len) == 0 && g->str[g->len] == '\0');
        ck_assert_int_eq(g->has_num, f->has_num);
        ck_assert(g->num == (f->has_num ? f->num : 0));
    }
    struct trace_field wf[MTA_TRACE_MAX_FIELDS];
    struct trace_rec want = as_rec(x, wf);
    char *a = line_of(&it.rec), *b = line_of(&want);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
}

static FILE *reread(char *buf, size_t len)
{
    FILE *in = fmemopen(buf, len, "rb");
    ck_assert_ptr_nonnull(in);
    return in;
}

START_TEST(numbers_and_texts_round_trip)
{
    static const char nul[] = "a\0b\xff\x80\"=\\";
    struct rec recs[] = {
        { EPOCH, "queue", "n", 8, {
              num_field("a", "0", 0), num_field("b", "-1", -1),
              num_field("c", "9223372036854775807", INT64_MAX),
              num_field("d", "-9223372036854775808", INT64_MIN),
              num_field("e", "-0", 0), num_field("f", "007", 7), num_field("g", "+1", 1),
              num_field("h", "CONN_ERR_CONNECT", -10) } },
        { EPOCH + 5, "queue", "n", 6, {
              num_field("a", "192.0.2.1", 0xC0000201), num_field("b", "", 0),
              num_field("c", "18446744073709551615", -1), num_field("d", "1", 2),
              text_field("e", nul, sizeof nul - 1), text_field("", "", 0) } },
        /* Backwards in time: a broken invariant, still written as it was. */
        { EPOCH + 3, "", "", 0, { { 0 } } },
        { INT64_MIN / 2, "k", "n", 1, { num_field("t", "12", 12) } },
    };
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    tbin_write_header(out);
    tbin_write_text(out, "# one", 5);
    struct tbin_writer *w = tbin_writer_create(out, EPOCH);
    for (size_t i = 0; i < sizeof recs / sizeof *recs; i++)
        put(w, &recs[i]);
    tbin_writer_close(w);
    /* A second run: ids start afresh, so its first string is new again. */
    w = tbin_writer_create(out, EPOCH);
    put(w, &recs[0]);
    tbin_writer_close(w);
    tbin_write_end(out);
    fclose(out);

    FILE *in = reread(buf, len);
    struct tbin_reader *rd = tbin_reader_create(in, "mem");
    struct tbin_item it;
    ck_assert_int_eq(tbin_reader_next(rd, &it), 1);
    ck_assert_int_eq(it.type, TBIN_ITEM_TEXT);
    ck_assert(it.len == 5 && memcmp(it.text, "# one", 5) == 0);
    for (size_t i = 0; i < sizeof recs / sizeof *recs; i++)
        expect(rd, &recs[i]);
    expect(rd, &recs[0]);
    ck_assert_int_eq(tbin_reader_next(rd, &it), 0);
    tbin_reader_destroy(rd);
    fclose(in);
    free(buf);
}
END_TEST

/* Strings over TBIN_MAX_NAME go literal; past TBIN_MAX_IDS new strings do
 * too; a buffer reused with other text at the same address is not taken
 * for the id its old text had. */
START_TEST(literals_and_reused_buffers)
{
    char *long_kind = malloc(TBIN_MAX_NAME + 2);
    memset(long_kind, 'k', TBIN_MAX_NAME + 1);
    long_kind[TBIN_MAX_NAME + 1] = '\0';
    char key[16];
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    tbin_write_header(out);
    struct tbin_writer *w = tbin_writer_create(out, EPOCH);
    struct rec r = { EPOCH, long_kind, "n", 1, { text_field(key, "v", 1) } };
    const int keys = TBIN_MAX_IDS + 10;
    for (int i = 0; i < keys; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put(w, &r);
    }
    snprintf(key, sizeof key, "k%d", 3);    /* interned long ago: its id again */
    put(w, &r);
    tbin_writer_close(w);
    tbin_write_end(out);
    fclose(out);
    /* Every id went to a key (the kind is literal, "n" took one): the last
     * ten keys are literal, and the file says so. */
    ck_assert_uint_gt(len, (size_t)keys * (TBIN_MAX_NAME + 1));

    FILE *in = reread(buf, len);
    struct tbin_reader *rd = tbin_reader_create(in, "mem");
    for (int i = 0; i < keys; i++) {
        snprintf(key, sizeof key, "k%d", i);
        expect(rd, &r);
    }
    snprintf(key, sizeof key, "k%d", 3);
    expect(rd, &r);
    struct tbin_item it;
    ck_assert_int_eq(tbin_reader_next(rd, &it), 0);
    tbin_reader_destroy(rd);
    fclose(in);
    free(buf);
    free(long_kind);
}
END_TEST

/* The same records, the same bytes: ids go by first use, not by address. */
START_TEST(bytes_depend_only_on_the_records)
{
    char *bufs[2] = { NULL, NULL };
    size_t lens[2] = { 0, 0 };
    for (int pass = 0; pass < 2; pass++) {
        char *kind = strdup("queue"), *key = strdup("msg");
        FILE *out = open_memstream(&bufs[pass], &lens[pass]);
        struct tbin_writer *w = tbin_writer_create(out, EPOCH);
        struct rec r = { EPOCH + 1, kind, "done", 1, { num_field(key, "42", 42) } };
        put(w, &r);
        put(w, &r);
        r.kind = "queue";       /* another address, the same text */
        put(w, &r);
        tbin_writer_close(w);
        fclose(out);
        free(kind);
        free(key);
    }
    ck_assert_uint_eq(lens[0], lens[1]);
    ck_assert(memcmp(bufs[0], bufs[1], lens[0]) == 0);
    free(bufs[0]);
    free(bufs[1]);
}
END_TEST

static Suite *trace_bin_suite(void)
{
    Suite *su = suite_create("trace_bin");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, numbers_and_texts_round_trip);
    tcase_add_test(tc, literals_and_reused_buffers);
    tcase_add_test(tc, bytes_depend_only_on_the_records);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    SRunner *sr = srunner_create(trace_bin_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
