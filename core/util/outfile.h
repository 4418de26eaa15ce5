/*
 * outfile - output streams that remember why a write failed
 *
 * SYNOPSIS
 *   struct outfile *of = outfile_open("trace.txt");   NULL with errno set
 *   fprintf(outfile_stream(of), ...);
 *   int err = outfile_close(of);        0, or the errno of the first failure
 *
 *   struct outfile *so = outfile_fd(1, 0);            a stream on fd 1, not closed
 *
 * DESCRIPTION
 *   A stdio stream forgets why a write failed: ferror() stays set, but a
 *   later fflush() succeeds with nothing left to write, and errno has long
 *   been overwritten.  An outfile is a stdio stream (glibc fopencookie) whose
 *   writes go straight to write(2) on its descriptor and keep the first
 *   errno, so that every output of mtasim can say at the end "cannot write
 *   FILE: No space left on device" and exit 2 - never 0 with a short file.
 *
 *   outfile_open() creates or truncates path for writing (mode 0666 less the
 *   umask, as fopen "w").  outfile_fd() wraps a descriptor the caller has;
 *   own says whether outfile_close() closes it.  The stream is fully
 *   buffered unless line is set (outfile_set_line()).
 *
 *   outfile_error() is the errno of the first failed write so far (0: none).
 *   outfile_close() flushes, closes the stream (and the descriptor when
 *   owned, checking close(2) too: NFS reports errors there), frees it, and
 *   returns the first errno; the outfile is gone either way.
 *   outfile_release() is the same for a stream that its user has already
 *   fclose()d (libpcap's pcap_dump_close() closes the stream it was
 *   given): it only frees, and returns the first errno.
 *
 *   outfile_fileno() is the descriptor (fileno() of a cookie stream is -1),
 *   for a child process that writes through a copy of it (dup()).
 *
 *   Nothing here knows mtasim: a generic utility of core/util.
 */
#ifndef MTASIM_UTIL_OUTFILE_H
#define MTASIM_UTIL_OUTFILE_H

#include <stdio.h>

struct outfile;

struct outfile *outfile_open(const char *path);
struct outfile *outfile_fd(int fd, int own);
FILE *outfile_stream(struct outfile *of);
void outfile_set_line(struct outfile *of);
int outfile_error(const struct outfile *of);
int outfile_close(struct outfile *of);
int outfile_release(struct outfile *of);
int outfile_fileno(const struct outfile *of);

#endif
