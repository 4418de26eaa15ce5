/*
 * smtp_server - the core's inbound SMTP server (private interface)
 *
 * SYNOPSIS
 *   (mta.c)
 *   smtp_server_shutdown(m);      at mta_shutdown: close sessions and the listener
 *   smtp_server_free(m);          at mta_destroy: free what is left
 *
 *   The public side is in mta.h: mta_listen, mta_add_user,
 *   mta_on_inbound_message, mta_plugin_fault.  smtp_server.c documents the
 *   protocol.
 */
#ifndef MTASIM_SMTP_SERVER_H
#define MTASIM_SMTP_SERVER_H

struct mta;

void smtp_server_shutdown(struct mta *m);
void smtp_server_free(struct mta *m);
/* fd is an inbound session's, still open. */
int smtp_server_has_fd(struct mta *m, int fd);

#endif
