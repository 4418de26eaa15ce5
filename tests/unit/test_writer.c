/*
 * test_writer - unit tests for the core's paced writing: core/util/outq.c
 * (what a socket did not take, in order, bounded) and core/smtp_data.c (the
 * message data produced a chunk at a time while the socket takes it)
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"
#include "smtp_data.h"

/* A socket that takes at most `room' bytes, then pretends to be full. */
struct sock {
    char got[1 << 20];
    size_t len;
    size_t room;            /* what it takes before -EAGAIN */
    size_t per_call;        /* at most this much per call (0: no limit) */
    int fail;               /* return -EPIPE */
    int calls;
};

static int sock_put(void *arg, const void *buf, size_t len)
{
    struct sock *s = arg;
    s->calls++;
    if (s->fail)
        return -EPIPE;
    if (s->room == 0)
        return -EAGAIN;
    size_t n = len < s->room ? len : s->room;
    if (s->per_call && n > s->per_call)
        n = s->per_call;
    ck_assert_uint_le(s->len + n, sizeof s->got);
    memcpy(s->got + s->len, buf, n);
    s->len += n;
    s->room -= n;
    return (int)n;
}

START_TEST(outq_keeps_order_and_bounds)
{
    struct sock s = { .room = 5 };
    struct outq q;
    outq_init(&q, 16);
    ck_assert_int_eq(outq_write(&q, "MAIL\r\n", 6, sock_put, &s), 0);
    ck_assert_uint_eq(s.len, 5);
    ck_assert_uint_eq(outq_len(&q), 1);
    /* Held bytes first: a later write is not tried on the socket. */
    int calls = s.calls;
    s.room = 100;
    ck_assert_int_eq(outq_write(&q, "RCPT\r\n", 6, sock_put, &s), 0);
    ck_assert_int_eq(s.calls, calls);
    ck_assert_uint_eq(outq_len(&q), 7);
    ck_assert_int_eq(outq_write(&q, "0123456789", 10, sock_put, &s), -ENOBUFS);
    ck_assert_uint_eq(outq_len(&q), 7);        /* refused whole */
    ck_assert_int_eq(outq_flush(&q, sock_put, &s), 0);
    ck_assert_uint_eq(outq_len(&q), 0);
    ck_assert_mem_eq(s.got, "MAIL\r\nRCPT\r\n", 12);
    s.fail = 1;
    ck_assert_int_eq(outq_write(&q, "QUIT\r\n", 6, sock_put, &s), -EPIPE);
    outq_free(&q);
}
END_TEST

/* reference - the data as RFC 5321 4.5.2 makes it, written the simple way */
static size_t reference(const char *b, size_t n, int bdat, char *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        const char *nl = memchr(b + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - b) : n;
        if (b[i] == '.' && !bdat)
            out[o++] = '.';
        memcpy(out + o, b + i, end - i);
        o += end - i;
        if (nl == NULL)
            break;
        if (end == i || b[end - 1] != '\r')
            out[o++] = '\r';
        out[o++] = '\n';
        i = end + 1;
    }
    if (n > 0 && b[n - 1] != '\n') {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    if (!bdat) {
        memcpy(out + o, ".\r\n", 3);
        o += 3;
    }
    return o;
}

static size_t taken_sum;
static int taken_calls;
static void on_taken(void *arg, size_t n)
{
    (void)arg;
    ck_assert_uint_gt(n, 0);
    taken_sum += n;
    taken_calls++;
}

/* Every body, cut anywhere by the socket, comes out as the reference. */
START_TEST(data_equals_reference_however_cut)
{
    static const char *const bodies[] = {
        "", "x", "x\n", ".\n", "..\r\n.", "a\r\nb\nc", "\n\n\r\n", ".hidden\n.\n..\nend",
        "\r", "line\r\r\n", "no end at all",
    };
    static char want[1 << 16], big[40000];
    for (size_t k = 0; k < sizeof big; k++)     /* long lines, dots at line starts */
        big[k] = k % 97 == 96 ? '\n' : k % 97 == 0 ? '.' : (char)('a' + k % 26);
    for (size_t bi = 0; bi <= sizeof bodies / sizeof bodies[0]; bi++) {
        const char *b = bi < sizeof bodies / sizeof bodies[0] ? bodies[bi] : big;
        size_t n = b == big ? sizeof big : strlen(b);
        for (int bdat = 0; bdat <= 1; bdat++) {
            size_t wlen = reference(b, n, bdat, want);
            ck_assert_uint_eq(smtp_data_size(b, n, bdat), wlen);
            static const size_t cuts[] = { 1, 2, 3, 7, 1000, 16384, 100000 };
            for (size_t ci = 0; ci < sizeof cuts / sizeof cuts[0]; ci++) {
                static struct sock s;
                static struct smtp_data d;
                memset(&s, 0, sizeof s);
                s.per_call = cuts[ci];
                smtp_data_begin(&d, b, n, bdat);
                taken_sum = 0;
                taken_calls = 0;
                /* Each round the socket makes some room, as ACKs would. */
                for (int round = 0; round < 200000 && !smtp_data_all_taken(&d); round++) {
                    s.room = cuts[ci] * 3;
                    ck_assert_int_eq(smtp_data_pump(&d, sock_put, &s, on_taken, NULL), 0);
                }
                ck_assert(smtp_data_all_taken(&d));
                ck_assert_uint_eq(s.len, wlen);
                ck_assert_mem_eq(s.got, want, wlen);
                ck_assert_uint_eq(taken_sum, wlen);         /* MESSAGEDATA adds up */
                ck_assert_uint_eq(d.taken, wlen);
            }
        }
    }
}
END_TEST

START_TEST(data_write_failure_and_progress)
{
    static struct sock s;
    static struct smtp_data d;
    memset(&s, 0, sizeof s);
    s.room = 10;
    smtp_data_begin(&d, "hello world\n", 12, 0);
    ck_assert_int_eq(smtp_data_pump(&d, sock_put, &s, on_taken, NULL), 0);
    ck_assert(!smtp_data_all_taken(&d));
    /* 10 taken, 4 of them not yet left: progress is 6 bytes gone. */
    ck_assert(smtp_data_progress(&d, 4));
    ck_assert(!smtp_data_progress(&d, 4));      /* nothing more left */
    ck_assert(smtp_data_progress(&d, 0));
    ck_assert(!smtp_data_progress(&d, -EBADF));
    s.fail = 1;
    ck_assert_int_eq(smtp_data_pump(&d, sock_put, &s, on_taken, NULL), -EPIPE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("writer");
    TCase *tc = tcase_create("writer");
    tcase_add_test(tc, outq_keeps_order_and_bounds);
    tcase_add_test(tc, data_equals_reference_however_cut);
    tcase_add_test(tc, data_write_failure_and_progress);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
