/*
 * fuzz_common - what the libFuzzer targets share; see fuzz_common.h
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

#ifndef MTASIM_SOURCE_ROOT
#error "MTASIM_SOURCE_ROOT must name the source tree"
#endif

static char scratch[256];

/* remove_scratch - at exit: the scratch tree */
static void remove_scratch(void)
{
    static const char *const files[] = { "case/fuzz.scn", "case/capture.pcap",
                                         "case/message.eml", "world.inc" };
    char p[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", scratch, files[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/case", scratch);
    rmdir(p);
    rmdir(scratch);
}

/* make_scratch - SCRATCH/, SCRATCH/case/, SCRATCH/world.inc (a link) */
static void make_scratch(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/mtasim-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    char p[512];
    if (mkdtemp(scratch) == NULL)
        fuzz_fail("cannot make a scratch directory: %s", strerror(errno));
    snprintf(p, sizeof p, "%s/case", scratch);
    if (mkdir(p, 0700) < 0)
        fuzz_fail("mkdir %s: %s", p, strerror(errno));
    snprintf(p, sizeof p, "%s/world.inc", scratch);
    if (symlink(MTASIM_SOURCE_ROOT "/scenarios/world.inc", p) < 0)
        fuzz_fail("symlink %s: %s", p, strerror(errno));
    snprintf(p, sizeof p, "%s/case/message.eml", scratch);
    if (symlink(MTASIM_SOURCE_ROOT "/scenarios/inbound/message.eml", p) < 0)
        fuzz_fail("symlink %s: %s", p, strerror(errno));
    atexit(remove_scratch);
}

const char *fuzz_scratch_path(const char *name)
{
    static char path[600];
    if (scratch[0] == '\0')
        make_scratch();
    snprintf(path, sizeof path, "%s/case/%s", scratch, name);
    return path;
}

const char *fuzz_scratch_file(const char *name, const uint8_t *data, size_t size)
{
    const char *path = fuzz_scratch_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        fuzz_fail("open %s: %s", path, strerror(errno));
    for (size_t done = 0; done < size;) {
        ssize_t k = write(fd, data + done, size - done);
        if (k <= 0)
            fuzz_fail("write %s: %s", path, strerror(errno));
        done += (size_t)k;
    }
    close(fd);
    return path;
}

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz oracle: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}
