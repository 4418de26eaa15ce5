/*
 * fdreserve - simulated descriptors that never alias a real open file
 *
 * SYNOPSIS
 *   #include "fdreserve.h"
 *
 *   fdreserve_setup();                   (first thing in main)
 *   if (fdreserve_claim(fd) < 0) ...     (simenv: fd becomes a simulated one)
 *   fdreserve_set_resolver(fn, arg);     (getpeername/getsockname answers)
 *
 * DESCRIPTION
 *   The core's descriptors under `mtasim run` are numbers the simulated
 *   environment hands out (simenv.c), FDRESERVE_BASE and up.  Plugins see
 *   them (conn_fd, MQ_SmtpFileDescriptor) and may call the system on them.
 *   So that such a call never reaches one of the process's real files (the
 *   libfaketime shared-memory file, a trace or pcap file, a pipe),
 *   fdreserve_setup() reserves every number in [FDRESERVE_BASE,
 *   FDRESERVE_END): a real descriptor already there is moved above the
 *   range, and each number is made a placeholder, so later open() calls
 *   of the process get numbers at or above FDRESERVE_END.
 *
 *   fdreserve_claim(fd) gives a number a fresh, unconnected TCP socket of
 *   its own when the simulation allocates it: a plugin's setsockopt() /
 *   getsockopt() work on it (and stay with that connection), read() has
 *   nothing, write() fails (EPIPE, with SIGPIPE, as on an unconnected TCP
 *   socket).  It returns -1 when the number no longer holds what this
 *   module put there (a plugin closed it and a real file took it): the
 *   caller must not hand it out.
 *
 *   getpeername() and getsockname() are interposed (defined in the
 *   executable, which is first in every plugin's symbol lookup, as the
 *   libfaketime bridge interposes the clock): on a descriptor the
 *   resolver knows they answer the simulated addresses (AF_INET, or
 *   AF_INET6 on a connection of an IPv6 binding); on any other they are
 *   the system calls.
 *
 * BOUNDS
 *   FDRESERVE_END - FDRESERVE_BASE numbers; the soft RLIMIT_NOFILE is
 *   raised (up to the hard one) so the process keeps room above them.
 *   Without fdreserve_setup() (unit tests) claims always succeed and
 *   nothing is reserved.
 */
#ifndef MTASIM_FDRESERVE_H
#define MTASIM_FDRESERVE_H

#include <sys/socket.h>
#include <netinet/in.h>

#define FDRESERVE_BASE 3
#define FDRESERVE_END 1024

/* Fill *out with the simulated local (peer == 0) or remote (peer == 1)
 * address of fd (a sockaddr_in or sockaddr_in6, its size in *outlen): 0; -1 with errno (ENOTCONN) when it has none yet; 1 when
 * fd is not a simulated descriptor. */
typedef int (*fdreserve_resolver)(void *arg, int fd, int peer, struct sockaddr_storage *out,
                                  socklen_t *outlen);

int fdreserve_setup(void);
int fdreserve_active(void);
int fdreserve_claim(int fd);
void fdreserve_set_resolver(fdreserve_resolver fn, void *arg);
void fdreserve_clear_resolver(void *arg);

#endif
