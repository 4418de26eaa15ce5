/*
 * parse - the scenario language's parser: a .scn file into a struct scn_scenario
 *
 * SYNOPSIS
 *   #include "parse.h"
 *
 *   struct scn_scenario *scn_parse_file(const char *path, struct scn_error *err);
 *   struct scn_scenario *scn_parse_string(const char *name, const char *text,
 *                                         struct scn_error *err);
 *
 * DESCRIPTION
 *   The language is line-oriented (docs/scenario-language.md is the
 *   reference).  Each line is cut into tokens first: blanks separate
 *   tokens, '#' outside double quotes ends the line, and "quoted" parts
 *   (escapes \" \\ \n \r \t; any other backslash is kept as written)
 *   may contain blanks and '#'.  Every token keeps
 *   its raw extent in the line, because a reply's text is the rest of the
 *   line as written, not a list of words.
 *
 *   A line that does not start with a blank is a directive, looked up in
 *   the table `directives'; one handler per directive.  An indented line
 *   belongs to the block opened by the closest preceding directive that
 *   opens one (remote, expect hooks in order); its first word is looked up
 *   in that block's table.  Any directive closes the open block; comments
 *   and blank lines do not.
 *
 *   References that may point forward (an inject naming a binding declared
 *   later, an expectation about a message injected later) are collected
 *   during the parse and resolved once the whole input has been read.
 *
 *   One module in eight files, one per directive family, sharing the
 *   parser's state (struct parser) and helpers through parse_internal.h:
 *     parse.c          the driver: lines, blocks, includes and file limits,
 *                      the directive table, forward references
 *     parse_token.c    tokens and values: the tokenizer, numbers, durations,
 *                      addresses, names, rates, probabilities, operators;
 *                      errors and "did you mean" hints
 *     parse_world.c    world directives: scenario, description, seed, epoch,
 *                      run, config, network, binding, inject, plugin,
 *                      requires
 *     parse_dns.c      the dns directive: records, failures, their time and
 *                      query windows, contradictions in the zone
 *     parse_remote.c   remote blocks: scripted replies and their conditions,
 *                      actions, connect modes, faults and settings
 *     script_check.c   warnings: scripted remote lines that never take effect
 *     parse_inbound.c  the MTA's inbound side: listen, user, client blocks
 *     parse_expect.c   expectations: expect lines and blocks, patterns,
 *                      matchers
 *
 * CONTRACT
 *   scn_parse_file() and scn_parse_string() return a complete scenario or
 *   NULL; on NULL, *err holds the first error.  Nothing read from the input
 *   can make them crash, loop without end or allocate without bound: lines
 *   are at most SCN_MAX_LINE bytes, files at most SCN_MAX_FILE_SIZE, and
 *   every list has a limit below.  Keywords are case-insensitive; hook
 *   names, matcher keys and values are not.
 *
 * DIAGNOSTICS
 *   err->file, err->line, err->col: 1-based position of the offending token
 *   in the file that contains it (an included file by its own path).  A file
 *   that cannot be read at all is reported at line 0, column 0.  err->msg
 *   is one line, e.g. "bad duration '5x': expected a number with a unit
 *   us, ms, s, m, h or d", with "; did you mean 'x'?" where a known word is
 *   close to an unknown one.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse_internal.h"

/* read_bounded - a whole file into memory, at most SCN_MAX_FILE_SIZE bytes;
 * on failure NULL and a reason in why */
static char *read_bounded(const char *path, size_t *len, char *why, size_t whysz)
{
    /* Non-blocking, so that a FIFO cannot stop the whole command waiting for
     * a writer; only a regular file is read (not a FIFO, a device, a
     * directory: /dev/zero would never end). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, whysz, "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int fstat_errno = errno;
        snprintf(why, whysz, "%s", fstat(fd, &st) < 0 ? strerror(fstat_errno)
                 : S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        close(fd);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > (size_t)SCN_MAX_FILE_SIZE) {
                snprintf(why, whysz, "larger than %ld bytes", SCN_MAX_FILE_SIZE);
                free(buf);
                close(fd);
                return NULL;
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                free(buf);
                close(fd);
                snprintf(why, whysz, "out of memory");
                return NULL;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whysz, "%s", strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > (size_t)SCN_MAX_FILE_SIZE) {
        snprintf(why, whysz, "larger than %ld bytes", SCN_MAX_FILE_SIZE);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* relative_to - path as seen from the directory of the file base */
static char *relative_to(const char *base, const char *path)
{
    const char *slash = strrchr(base, '/');
    if (path[0] == '/' || slash == NULL)
        return xstrdup(path);
    size_t dirlen = (size_t)(slash - base);
    size_t n = dirlen + 1 + strlen(path);
    char *out = xmalloc(n + 1);
    memcpy(out, base, dirlen);
    out[dirlen] = '/';
    strcpy(out + dirlen + 1, path);
    return out;
}

/* intern_file - the scenario's own copy of a file name, shared by positions */
static const char *intern_file(struct scn_scenario *sc, const char *name)
{
    for (int i = 0; i < sc->nfiles; i++)
        if (strcmp(sc->files[i], name) == 0)
            return sc->files[i];
    grow((void **)&sc->files, sc->nfiles, sizeof *sc->files);
    sc->files[sc->nfiles] = xstrdup(name);
    return sc->files[sc->nfiles++];
}

/* add_ref - remember a forward reference to check after the parse */
void add_ref(struct parser *p, enum ref_kind kind, int index, struct scn_pos pos)
{
    grow((void **)&p->refs, p->nrefs, sizeof *p->refs);
    p->refs[p->nrefs].kind = kind;
    p->refs[p->nrefs].index = index;
    p->refs[p->nrefs].pos = pos;
    p->nrefs++;
}

/* close_block - end the open block: at a directive (at_eof = 0) or at the
 * end of the file; an unfinished multi-line reply or an empty expect block
 * is an error */
int close_block(struct parser *p, int at_eof)
{
    struct scn_scenario *sc = p->sc;
    if (p->has_pending) {
        const char *cmd = scn_cmd_names[p->pending.cmd];
        if (at_eof)
            return fail_pos(p, p->pending_last,
                            "multi-line reply not finished: the %s reply needs a last line "
                            "'%s %d TEXT' (a blank after the code, not '-')",
                            cmd, cmd, p->pending.code);
        return fail_tok(p, &p->tok[0],
                        "multi-line reply not finished: the %s reply from line %d needs a "
                        "last line '%s %d TEXT' before this one",
                        cmd, p->pending_last.line, cmd, p->pending.code);
    }
    if (p->block == BLOCK_HOOKS) {
        const struct scn_expect *ex = &sc->expects[p->block_index];
        int trace = ex->kind == SCN_EXPECT_TRACE_IN_ORDER || ex->kind == SCN_EXPECT_TRACE_EXACTLY;
        int exactly = ex->kind == SCN_EXPECT_HOOKS_EXACTLY || ex->kind == SCN_EXPECT_TRACE_EXACTLY;
        if (ex->npatterns == 0)
            return fail_pos(p, ex->pos, "'expect %s %s' has no %s lines: indent them under it",
                            trace ? "trace" : "hooks", exactly ? "exactly" : "in order",
                            trace ? "pattern" : "hook");
    }
    if (p->block == BLOCK_CLIENT && sc->clients[p->block_index].nsteps == 0)
        return fail_pos(p, sc->clients[p->block_index].pos,
                        "'client' has no script lines: indent them under it");
    p->block = BLOCK_NONE;
    return 0;
}

/* read_relative - the file t names, relative to the file naming it
 * (malloc'd, *len bytes); NULL after an error "cannot read WHAT file" */
char *read_relative(struct parser *p, const struct token *t, const char *what, size_t *len)
{
    char *path = relative_to(p->file, t->text);
    char why[128];
    char *body = read_bounded(path, len, why, sizeof why);
    if (body == NULL)
        fail_tok(p, t, "cannot read %s file '%s': %s", what, path, why);
    free(path);
    return body;
}

/* do_include - include PATH: read another file in place */
static int parse_buffer(struct parser *p, const char *buf, size_t len);
static int do_include(struct parser *p)
{
    if (need_args(p, 2, 2, "include PATH") < 0)
        return -1;
    const struct token *t = &p->tok[1];
    if (t->text[0] == '\0' || strlen(t->text) > SCN_MAX_PATH)
        return fail_tok(p, t, "bad include path '%s'", t->text);
    if (p->depth + 1 > SCN_MAX_INCLUDE_DEPTH)
        return fail_tok(p, t, "includes nested more than %d deep", SCN_MAX_INCLUDE_DEPTH);
    char *path = relative_to(p->file, t->text);
    char *real = realpath(path, NULL);
    if (real == NULL) {
        fail_tok(p, t, "cannot include '%s': %s", path, strerror(errno));
        free(path);
        return -1;
    }
    for (int i = 0; i <= p->depth; i++)
        if (p->real[i] != NULL && strcmp(p->real[i], real) == 0) {
            fail_tok(p, t, "include cycle: '%s' is already being read", path);
            free(path);
            free(real);
            return -1;
        }
    char why[128];
    size_t len = 0;
    char *buf = read_bounded(path, &len, why, sizeof why);
    if (buf == NULL) {
        fail_tok(p, t, "cannot include '%s': %s", path, why);
        free(path);
        free(real);
        return -1;
    }

    /* The included file is read with its own name and line numbers; the
     * directive closed any open block, so there is no state to carry. */
    assert(p->block == BLOCK_NONE && !p->has_pending);
    const char *saved_file = p->file;
    int saved_line = p->lineno;
    p->depth++;
    p->real[p->depth] = real;
    p->file = intern_file(p->sc, path);
    p->lineno = 0;
    int rc = parse_buffer(p, buf, len);
    p->real[p->depth] = NULL;
    p->depth--;
    p->file = saved_file;
    p->lineno = saved_line;
    free(real);
    free(buf);
    free(path);
    return rc;
}

/* The directives, one row each; the handler sees the whole line. */
static const struct directive {
    const char *name;
    int (*handle)(struct parser *p);
} directives[] = {
    { "scenario", do_scenario },
    { "description", do_description },
    { "seed", do_seed },
    { "epoch", do_epoch },
    { "run", do_run },
    { "config", do_config },
    { "liveness", do_liveness },
    { "dns", do_dns },
    { "network", do_network },
    { "binding", do_binding },
    { "remote", do_remote },
    { "inject", do_inject },
    { "include", do_include },
    { "expect", do_expect },
    { "plugin", do_plugin },
    { "listen", do_listen },
    { "user", do_user },
    { "client", do_client },
    { "requires", do_requires },
};

/* directive_line - a line that starts in column 1 */
static int directive_line(struct parser *p)
{
    const struct token *t = &p->tok[0];
    for (size_t i = 0; i < sizeof directives / sizeof directives[0]; i++)
        if (is_word(t, directives[i].name))
            return directives[i].handle(p);
    struct suggestion sg;
    char hint[128];
    suggest_begin(&sg, t->text);
    for (size_t i = 0; i < sizeof directives / sizeof directives[0]; i++)
        suggest_offer(&sg, directives[i].name);
    return fail_tok(p, t, "unknown directive '%s'%s", t->text, suggest_hint(&sg, hint, sizeof hint));
}

/* parse_buffer - every line of one file (the scenario or an include) */
static int parse_buffer(struct parser *p, const char *buf, size_t len)
{
    size_t off = 0;
    /* A UTF-8 byte order mark, as some editors write one, is no part of the
     * first line (it used to read as an invisible unknown directive). */
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        buf += 3;
        len -= 3;
    }
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t eol = nl ? (size_t)(nl - buf) : len;
        size_t n = eol - off;
        p->lineno++;
        if (n > 0 && buf[off + n - 1] == '\r')
            n--;
        if (n > SCN_MAX_LINE)
            return fail_at(p, SCN_MAX_LINE + 1, "line longer than %d bytes", SCN_MAX_LINE);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)buf[off + i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return fail_at(p, (int)i + 1, "unexpected control character 0x%02x "
                               "(is this a text file?)", c);
        }
        p->line = buf + off;
        p->len = (int)n;
        off = nl ? eol + 1 : len;
        if (tokenize(p) < 0)
            return -1;
        if (p->ntok == 0)
            continue;
        if (!p->indented) {
            if (close_block(p, 0) < 0 || directive_line(p) < 0)
                return -1;
        } else if (p->block == BLOCK_REMOTE) {
            if (remote_line(p) < 0)
                return -1;
        } else if (p->block == BLOCK_HOOKS) {
            if (hooks_line(p) < 0)
                return -1;
        } else if (p->block == BLOCK_CLIENT) {
            if (client_line(p) < 0)
                return -1;
        } else {
            return fail_tok(p, &p->tok[0], "indented line outside a block: only lines under "
                            "'remote', 'client' or 'expect hooks in order' are indented");
        }
    }
    return close_block(p, 1);
}

/* resolve_refs - forward references, in the order they were written */
static int resolve_refs(struct parser *p)
{
    const struct scn_scenario *sc = p->sc;
    for (int r = 0; r < p->nrefs; r++) {
        const struct ref *ref = &p->refs[r];
        if (ref->kind == REF_BINDING) {
            const char *name = sc->injects[ref->index].binding;
            int found = strcmp(name, "default") == 0;
            for (int i = 0; i < sc->nbindings && !found; i++)
                found = strcmp(sc->bindings[i].name, name) == 0;
            if (!found) {
                struct suggestion sg;
                char hint[128];
                suggest_begin(&sg, name);
                for (int i = 0; i < sc->nbindings; i++)
                    suggest_offer(&sg, sc->bindings[i].name);
                return fail_pos(p, ref->pos, "unknown binding '%s': no 'binding %s ADDR' line%s",
                                name, name, suggest_hint(&sg, hint, sizeof hint));
            }
        } else {
            unsigned long id = sc->expects[ref->index].msg_id;
            int found = inject_id_known(p, id);
            /* With clients, ids above 1000 are the messages the server accepts;
             * ids above MTA_DSN_ID_BASE the DSNs the core makes. */
            if (!found && !(sc->nclients > 0 && id > SCN_INBOUND_ID_BASE) && id <= MTA_DSN_ID_BASE)
                return fail_pos(p, ref->pos, "expectation about message %lu, but no 'inject %lu' line",
                                id, id);
        }
    }
    return 0;
}

/* default_name - the file's base name without ".scn" */
static char *default_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".scn") == 0)
        n -= 4;
    return xstrndup(base, n);
}

/* parse_top - the common part of both entry points */
static struct scn_scenario *parse_top(const char *name, char *real, const char *buf, size_t len,
                                      struct scn_error *err)
{
    struct scn_scenario *sc = xmalloc(sizeof *sc);
    memset(sc, 0, sizeof *sc);
    sc->file = xstrdup(name);
    sc->name = default_name(name);
    sc->seed = 1;
    sc->epoch = DEFAULT_EPOCH;
    sc->run_for = -1;
    sc->storm_count = 100;          /* world/liveness.h: LIVENESS_STORM_COUNT */
    sc->storm_window = 60 * USEC_S;
    sc->dns_latency = 1 * USEC_MS;
    sc->dns_timeout = 5 * USEC_S;
    mta_config_defaults(&sc->config);

    struct parser *p = xmalloc(sizeof *p);
    memset(p, 0, PARSER_CLEARED);
    p->sc = sc;
    p->err = err;
    p->real[0] = real;
    p->file = intern_file(sc, name);
    int rc = parse_buffer(p, buf, len);
    if (rc == 0)
        rc = resolve_refs(p);
    if (rc == 0)
        rc = resolve_inbound(p);
    if (rc == 0)
        rc = dns_check_contradictions(p);
    if (rc == 0)
        script_check(p);
    assert((rc < 0) == (p->failed != 0));
    pending_free(p);
    inject_ids_free(p);
    free(p->refs);
    free(p);
    free(real);
    if (rc < 0) {
        scn_free(sc);
        return NULL;
    }
    memset(err, 0, sizeof *err);
    return sc;
}

/* scn_parse_file - parse a scenario file and what it includes */
struct scn_scenario *scn_parse_file(const char *path, struct scn_error *err)
{
    assert(path != NULL && err != NULL);
    memset(err, 0, sizeof *err);
    char why[128];
    size_t len = 0;
    char *buf = read_bounded(path, &len, why, sizeof why);
    if (buf == NULL) {
        /* Line 1, column 1 rather than 0:0: every file:line:col reader
         * (editors, CI annotations) takes it, and the line is still
         * "file:line:col: message" like every other bad input. */
        copy_bounded(err->file, sizeof err->file, path);
        err->line = 1;
        err->col = 1;
        snprintf(err->msg, sizeof err->msg, "cannot open scenario: %s", why);
        return NULL;
    }
    struct scn_scenario *sc = parse_top(path, realpath(path, NULL), buf, len, err);
    free(buf);
    return sc;
}

/* scn_parse_buffer - parse len bytes held in memory (NUL bytes and all, as
 * a file's); name stands for its file */
struct scn_scenario *scn_parse_buffer(const char *name, const char *buf, size_t len,
                                      struct scn_error *err)
{
    assert(name != NULL && buf != NULL && err != NULL);
    memset(err, 0, sizeof *err);
    if (len > (size_t)SCN_MAX_FILE_SIZE) {
        copy_bounded(err->file, sizeof err->file, name);
        snprintf(err->msg, sizeof err->msg, "cannot read scenario: larger than %ld bytes",
                 SCN_MAX_FILE_SIZE);
        return NULL;
    }
    return parse_top(name, NULL, buf, len, err);
}

/* scn_parse_string - parse a scenario held in memory; name stands for its file */
struct scn_scenario *scn_parse_string(const char *name, const char *text, struct scn_error *err)
{
    assert(name != NULL && text != NULL && err != NULL);
    memset(err, 0, sizeof *err);
    return parse_top(name, NULL, text, strlen(text), err);
}
