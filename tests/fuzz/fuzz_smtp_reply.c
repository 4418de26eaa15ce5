/*
 * fuzz_smtp_reply - libFuzzer target: the SMTP reply parser (core/smtp_reply.c)
 *
 * The input is bytes from a server.  Oracles, from smtp_reply.h's contract:
 * a complete reply has a code 200..599 (first digit 2-5), 1..128 lines,
 * terminated strings within their bounds, and consumes at least one byte
 * and no more than given; an enhanced status code is in range or all -1;
 * "need more" consumes nothing; an error consumes at least one byte.  Then
 * the stream is parsed as a client would (reply after reply), and again
 * fed in two pieces split at a byte the input chooses: the reply decided
 * on the whole buffer is the same when its bytes arrive in pieces.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "smtp_reply.h"

static struct smtp_reply r1, r2;

/* check_one - smtp_reply_parse's contract on buf[0..len) */
static int check_one(const char *buf, size_t len, struct smtp_reply *r, size_t *used)
{
    char err[128];
    err[0] = '\0';
    int rc = smtp_reply_parse(buf, len, r, used, err, sizeof err);
    if (rc == 1) {
        if (r->code < 200 || r->code > 599 || *used == 0 || *used > len)
            fuzz_fail("reply code %d, consumed %zu of %zu", r->code, *used, len);
        if (r->nlines < 1 || r->nlines > SMTP_REPLY_MAX_LINES)
            fuzz_fail("%d lines", r->nlines);
        if (strlen(r->text) != r->text_len || r->text_len >= SMTP_REPLY_TEXT_MAX
            || strlen(r->first_line) > SMTP_REPLY_LINE_MAX)
            fuzz_fail("text bounds");
        int have = r->enh_class != -1;
        if (have != (r->enh_subject != -1) || have != (r->enh_detail != -1)
            || (have && (r->enh_class != r->code / 100 || r->enh_subject > 999
                         || r->enh_detail > 999 || r->enh_subject < 0 || r->enh_detail < 0)))
            fuzz_fail("enhanced code %d.%d.%d for %d", r->enh_class, r->enh_subject,
                      r->enh_detail, r->code);
    } else if (rc == 0) {
        if (*used != 0)
            fuzz_fail("need more, yet consumed %zu", *used);
    } else if (rc == -1) {
        if (*used == 0 || *used > len || err[0] == '\0')
            fuzz_fail("error '%s' consumed %zu of %zu", err, *used, len);
    } else {
        fuzz_fail("returned %d", rc);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    /* A client's loop: reply after reply until more data is needed. */
    size_t off = 0;
    for (int n = 0; off < len && n < 10000; n++) {
        size_t used = 0;
        int rc = check_one(buf + off, len - off, &r1, &used);
        if (rc == 0)
            break;
        off += used;
    }
    /* Pieces: whatever the first reply is, a prefix never decides otherwise. */
    size_t used1 = 0, used2 = 0;
    int whole = check_one(buf, len, &r1, &used1);
    if (split < len) {
        int part = check_one(buf, split, &r2, &used2);
        if (part == 1 && (whole != 1 || used2 != used1 || r2.code != r1.code
                          || strcmp(r2.text, r1.text) != 0))
            fuzz_fail("a prefix of %zu bytes gave a reply the whole did not", split);
        if (whole == 1 && part == 1 && used1 > split)
            fuzz_fail("consumed past the prefix");
    }
    return 0;
}
