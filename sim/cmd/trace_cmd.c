/*
 * trace_cmd - "mtasim trace show": a binary trace rendered as the text trace
 *
 * See trace_cmd.h.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outfile.h"
#include "trace_bin_read.h"
#include "trace_cmd.h"
#include "trace_store.h"

#define OUT_BATCH (64 * 1024)

static const char usage[] =
    "usage: mtasim trace show FILE [-o OUT]\n"
    "\n"
    "Render a binary trace (mtasim run/bench --trace FILE --trace-format bin) as the text\n"
    "trace, byte for byte: the SHA-256 of a run's lines is the digest the run reported.\n"
    "  FILE        the binary trace; - = standard input\n"
    "  -o, --output OUT   write the text to OUT (default, or -: standard output)\n"
    "A truncated or corrupt file: FILE:RECORD:BYTE: message on stderr (RECORD the line\n"
    "the text would have had, BYTE the offset in its bytes), exit 2.  docs/trace-format.md.\n";

int trace_format_arg(const char *cmd, const char *arg, int *bin)
{
    if (strcmp(arg, "text") == 0 || strcmp(arg, "bin") == 0) {
        *bin = strcmp(arg, "bin") == 0;
        return 0;
    }
    fprintf(stderr, "mtasim %s: --trace-format is text or bin, not '%s'\n", cmd, arg);
    return -1;
}

/* render - every line of rd to out; 0, or -1 after a line on stderr */
static int render(struct tbin_reader *rd, FILE *out)
{
    struct trace_text t = { 0 };
    struct tbin_item it;
    int n;
    while ((n = tbin_reader_next(rd, &it)) > 0) {
        if (it.type == TBIN_ITEM_REC) {
            trace_text_line(&t, &it.rec, it.epoch);
        } else {
            /* Like the text trace's "# scenario" line: as written, then '\n'. */
            if (t.cap < t.len + it.len + 2) {
                t.cap = (t.len + it.len + 2) * 2;
                t.p = realloc(t.p, t.cap);
                if (t.p == NULL)
                    abort();
            }
            memcpy(t.p + t.len, it.text, it.len);
            t.len += it.len;
            t.p[t.len++] = '\n';
            t.p[t.len] = '\0';
        }
        if (t.len >= OUT_BATCH) {
            fwrite(t.p, 1, t.len, out);
            t.len = 0;
        }
    }
    if (t.len > 0)
        fwrite(t.p, 1, t.len, out);
    free(t.p);
    if (n < 0) {
        fflush(out);
        fprintf(stderr, "%s\n", tbin_reader_error(rd));
        return -1;
    }
    return 0;
}

/* show - mtasim trace show */
static int show(int argc, char **argv)
{
    static const struct option opts[] = {
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *out_path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "mtasim trace show: give one binary trace file (- = standard input)\n");
        fputs(usage, stderr);
        return 2;
    }
    const char *in_path = argv[optind];
    int from_stdin = strcmp(in_path, "-") == 0;
    FILE *in = from_stdin ? stdin : fopen(in_path, "rb");
    if (in == NULL) {
        fprintf(stderr, "mtasim trace show: cannot read %s: %s\n", in_path, strerror(errno));
        return 2;
    }
    /* Standard output is main()'s outfile: it reports a failed write. */
    int to_stdout = out_path == NULL || strcmp(out_path, "-") == 0;
    struct outfile *of = to_stdout ? NULL : outfile_open(out_path);
    if (!to_stdout && of == NULL) {
        fprintf(stderr, "mtasim trace show: cannot write %s: %s\n", out_path, strerror(errno));
        if (!from_stdin)
            fclose(in);
        return 2;
    }
    struct tbin_reader *rd = tbin_reader_create(in, from_stdin ? "-" : in_path);
    int rc = render(rd, to_stdout ? stdout : outfile_stream(of)) < 0 ? 2 : 0;
    tbin_reader_destroy(rd);
    if (!from_stdin)
        fclose(in);
    if (of != NULL) {
        int e = outfile_close(of);
        if (e != 0) {
            fprintf(stderr, "mtasim trace show: cannot write %s: %s\n", out_path, strerror(e));
            rc = 2;
        }
    }
    return rc;
}

/* trace_cmd_main - mtasim trace SUBCOMMAND */
int trace_cmd_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "show") == 0)
        return show(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "mtasim trace: the subcommand is show\n");
    fputs(usage, stderr);
    return 2;
}
