/*
 * outfile - output streams that remember why a write failed
 *
 * See outfile.h.  The stream is a glibc cookie stream: stdio buffers, and
 * outfile_write() is the only place bytes leave, so the first errno is
 * caught where it happens.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "outfile.h"

struct outfile {
    FILE *fp;
    int fd;
    int own;            /* close fd in outfile_close() */
    int err;            /* errno of the first failed write or close; 0 = none */
};

/* outfile_write - the cookie's write: all of n bytes, or -1 and the errno kept */
static ssize_t outfile_write(void *cookie, const char *buf, size_t n)
{
    struct outfile *of = cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(of->fd, buf + done, n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;        /* write(2) never returns 0 for n > 0 on a file */
            if (of->err == 0)
                of->err = errno;
            return -1;
        }
        done += (size_t)k;
    }
    return (ssize_t)n;
}

/* outfile_cookie_close - the cookie's close: the descriptor, if owned */
static int outfile_cookie_close(void *cookie)
{
    struct outfile *of = cookie;
    if (of->own && close(of->fd) < 0 && of->err == 0)
        of->err = errno;
    return of->err ? -1 : 0;
}

/* outfile_fd - a stream on fd; see outfile.h */
struct outfile *outfile_fd(int fd, int own)
{
    struct outfile *of = calloc(1, sizeof *of);
    if (of == NULL)
        return NULL;
    of->fd = fd;
    of->own = own;
    cookie_io_functions_t io = { .write = outfile_write, .close = outfile_cookie_close };
    of->fp = fopencookie(of, "w", io);
    if (of->fp == NULL) {
        int e = errno;
        free(of);
        errno = e;
        return NULL;
    }
    return of;
}

/* outfile_open - create or truncate path; see outfile.h */
struct outfile *outfile_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return NULL;
    struct outfile *of = outfile_fd(fd, 1);
    if (of == NULL) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return of;
}

FILE *outfile_stream(struct outfile *of)
{
    assert(of != NULL);
    return of->fp;
}

void outfile_set_line(struct outfile *of)
{
    setvbuf(of->fp, NULL, _IOLBF, 0);
}

int outfile_error(const struct outfile *of)
{
    return of->err;
}

int outfile_fileno(const struct outfile *of)
{
    return of->fd;
}

/* outfile_release - free an outfile whose stream was closed elsewhere */
int outfile_release(struct outfile *of)
{
    if (of == NULL)
        return 0;
    int err = of->err;
    free(of);
    return err;
}

/* outfile_close - flush, close, free; the first errno or 0 */
int outfile_close(struct outfile *of)
{
    if (of == NULL)
        return 0;
    /* fclose flushes (outfile_write keeps a failure) and calls
     * outfile_cookie_close; a stream error without an errno of ours
     * (stdio's own) still counts. */
    int bad = ferror(of->fp);
    if (fclose(of->fp) != 0 && of->err == 0)
        of->err = EIO;
    if (bad && of->err == 0)
        of->err = EIO;
    int err = of->err;
    free(of);
    return err;
}
