/*
 * esmtp_send - send one message with Debian's libESMTP and print its events
 *
 * SYNOPSIS
 *   esmtp_send HOST:PORT FROM TO...
 *
 * DESCRIPTION
 *   A client of real SMTP software for the fidelity tests
 *   (tests/fidelity/test_libesmtp.py): libESMTP (libesmtp-dev) sends a small
 *   message from FROM to each TO through the server at HOST:PORT, and the
 *   callback registered with smtp_set_eventcb() prints one line per event
 *   in the order libESMTP raises them:
 *
 *     event NUMBER [mailbox=ADDR code=N | octets=N | code=N]
 *
 *   (mailbox and code for SMTP_EV_MAILSTATUS and SMTP_EV_RCPTSTATUS, the
 *   octets argument of SMTP_EV_MESSAGEDATA, the transfer status code of
 *   SMTP_EV_MESSAGESENT), then "status CODE" for the message's transfer
 *   status.  tests/fidelity/test_libesmtp.py compares them with the
 *   "event" records of mtasim's own client for the same script.  Every protocol timeout is capped at TIMEOUT_S seconds
 *   (libESMTP's minimums are minutes), so a silent server cannot hang it.
 *
 * EXIT STATUS
 *   0 the session ran (whatever the server replied); 1 libESMTP failed to
 *   run it; 2 usage.
 */
#include <stddef.h>     /* libesmtp.h uses size_t without it */
#include <libesmtp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TIMEOUT_S 10L
#define MAX_RCPTS 16

static const char message_text[] =
    "From: <esmtp@sender.test>\r\n"
    "Subject: libESMTP fidelity test\r\n"
    "\r\n"
    "Sent by tests/live/esmtp_send.c.\r\n";

/* on_event - print one event; the statuses of the envelope events */
static void on_event(smtp_session_t session, int event_no, void *arg, ...)
{
    va_list ap;
    (void)session;
    (void)arg;
    va_start(ap, arg);
    if (event_no == SMTP_EV_MAILSTATUS || event_no == SMTP_EV_RCPTSTATUS) {
        const char *mailbox = va_arg(ap, const char *);
        const smtp_status_t *st = NULL;
        if (event_no == SMTP_EV_MAILSTATUS)
            st = smtp_reverse_path_status(va_arg(ap, smtp_message_t));
        else
            st = smtp_recipient_status(va_arg(ap, smtp_recipient_t));
        printf("event %d mailbox=%s code=%d\n", event_no, mailbox, st ? st->code : 0);
    } else if (event_no == SMTP_EV_MESSAGEDATA) {
        (void)va_arg(ap, smtp_message_t);
        printf("event %d octets=%d\n", event_no, va_arg(ap, int));
    } else if (event_no == SMTP_EV_MESSAGESENT) {
        const smtp_status_t *st = smtp_message_transfer_status(va_arg(ap, smtp_message_t));
        printf("event %d code=%d\n", event_no, st ? st->code : 0);
    } else {
        printf("event %d\n", event_no);
    }
    va_end(ap);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc - 3 > MAX_RCPTS) {
        fprintf(stderr, "usage: esmtp_send HOST:PORT FROM TO... (at most %d)\n", MAX_RCPTS);
        return 2;
    }
    smtp_session_t session = smtp_create_session();
    smtp_message_t message = session ? smtp_add_message(session) : NULL;
    if (message == NULL) {
        fprintf(stderr, "esmtp_send: cannot create a session\n");
        return 1;
    }
    for (int which = Timeout_GREETING; which <= Timeout_DATA2; which++)
        smtp_set_timeout(session, which | Timeout_OVERRIDE_RFC2822_MINIMUM, TIMEOUT_S);
    smtp_set_server(session, argv[1]);
    smtp_set_hostname(session, "esmtp.test");
    smtp_set_eventcb(session, on_event, NULL);
    smtp_set_reverse_path(message, argv[2]);
    for (int i = 3; i < argc; i++)
        smtp_add_recipient(message, argv[i]);
    smtp_set_message_str(message, (void *)message_text);
    int ok = smtp_start_session(session);
    if (!ok) {
        char buf[256];
        fprintf(stderr, "esmtp_send: %s\n", smtp_strerror(smtp_errno(), buf, sizeof buf));
    }
    const smtp_status_t *st = smtp_message_transfer_status(message);
    printf("status %d\n", st ? st->code : 0);
    smtp_destroy_session(session);
    return ok ? 0 : 1;
}
