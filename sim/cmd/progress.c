/*
 * progress - "done / total, failures so far" on a terminal, silence elsewhere
 *
 * See progress.h.  The decision to show anything is made once, at start.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"

struct progress {
    FILE *out;
    size_t total;
    const char *label;
    int drawn;              /* a line is on the terminal now */
};

/* progress_wanted - a terminal that is not a CI log, or MTASIM_PROGRESS */
static int progress_wanted(FILE *out)
{
    const char *force = getenv("MTASIM_PROGRESS");
    if (force && *force)
        return strcmp(force, "0") != 0;
    const char *ci = getenv("CI");
    const char *term = getenv("TERM");
    if (ci && *ci)
        return 0;
    if (term && strcmp(term, "dumb") == 0)
        return 0;
    return isatty(fileno(out));
}

/* progress_start - a progress line on out, or NULL when none is wanted */
struct progress *progress_start(FILE *out, size_t total, const char *label)
{
    if (!progress_wanted(out))
        return NULL;
    struct progress *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;        /* progress is a nicety: run without it */
    p->out = out;
    p->total = total;
    p->label = label;
    return p;
}

/* progress_show - redraw the line with the current counts */
void progress_show(struct progress *p, size_t done, size_t failed, const char *current)
{
    if (p == NULL)
        return;
    if (p->total)
        fprintf(p->out, "\r%s [%*zu/%zu]", p->label, (int)snprintf(NULL, 0, "%zu", p->total), done,
                p->total);
    else
        fprintf(p->out, "\r%s [%zu]", p->label, done);
    fprintf(p->out, "  %zu failed  %s\033[K", failed, current ? current : "");
    fflush(p->out);
    p->drawn = 1;
}

/* progress_clear - erase the line (it comes back with the next show) */
void progress_clear(struct progress *p)
{
    if (p == NULL || !p->drawn)
        return;
    fputs("\r\033[K", p->out);
    fflush(p->out);
    p->drawn = 0;
}

/* progress_end - erase the line for good */
void progress_end(struct progress *p)
{
    progress_clear(p);
    free(p);
}
