/*
 * isolate - run a scenario in a child process that a plugin cannot take down
 *
 * See isolate.h for the contract.  The child's result travels as JSON
 * (jansson) through a pipe; what the child could not say - it crashed,
 * hung or exited - the parent reads from the shared watch page.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "isolate.h"
#include "outfile.h"
#include "trace_summary.h"
#include "trace_store.h"

static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
#define NFATAL (sizeof fatal_signals / sizeof fatal_signals[0])

/* Child-side state: only the child of isolate_call() touches these. */
static struct hook_watch *child_page;
static int child_checked_leaks;     /* leak_check() ran: no second check at exit */
static struct sigaction previous_action[NFATAL];
/* Room for the signal handler when the stack itself overflowed. */
static char alt_stack[64 * 1024];

/* LeakSanitizer's on-demand check, in a sanitizer build; NULL otherwise. */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

/* signal_name - "SIGSEGV" for the signals a report may name */
static const char *signal_name(int sig, char buf[24])
{
    static const struct { int sig; const char *name; } names[] = {
        { SIGSEGV, "SIGSEGV" }, { SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" }, { SIGILL, "SIGILL" },
        { SIGABRT, "SIGABRT" }, { SIGKILL, "SIGKILL" }, { SIGTERM, "SIGTERM" },
        { SIGPIPE, "SIGPIPE" }, { SIGTRAP, "SIGTRAP" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == sig)
            return names[i].name;
    snprintf(buf, 24, "signal %d", sig);
    return buf;
}

/* on_fatal_signal - note the signal, then let the previous disposition act
 *
 * The previous one is the default (the child dies by the signal) or a
 * sanitizer's handler (it prints its report and exits): either way the
 * parent finds the signal in the page.  raise() from inside the handler
 * stays pending until the handler returns, so it also ends a raise()d
 * signal that would not fault again. */
static void on_fatal_signal(int sig)
{
    child_page->signal = sig;
    for (size_t i = 0; i < NFATAL; i++)
        if (fatal_signals[i] == sig)
            sigaction(sig, &previous_action[i], NULL);
    raise(sig);
}

/* on_child_exit - note exit(status); an interrupted run skips the rest
 *
 * Registered last, so it runs first: when exit() comes from a plugin in
 * the middle of the run, the world was never torn down, and a leak
 * checker's report at exit would only bury the real diagnosis. */
static void on_child_exit(int status, void *arg)
{
    (void)arg;
    child_page->exit_called = 1;
    child_page->exit_status = status;
    if (!child_page->result_sent)
        _exit(status);
}

/* child_setup - the page, the signal handlers, no core files */
static void child_setup(struct hook_watch *page)
{
    child_page = page;
    hook_watch_attach(page);
    stack_t ss = { .ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0 };
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NFATAL; i++)
        sigaction(fatal_signals[i], &sa, &previous_action[i]);
    struct rlimit no_core = { 0, 0 };
    setrlimit(RLIMIT_CORE, &no_core);
    on_exit(on_child_exit, NULL);
}

/* write_all - the whole buffer, across short writes; 0 or -1 */
static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ms_left - milliseconds until deadline (>= 0) */
static int ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (double)(deadline->tv_sec - now.tv_sec) * 1e3
                + (double)(deadline->tv_nsec - now.tv_nsec) / 1e6;
    return ms <= 0 ? 0 : ms > 1e9 ? 1000000000 : (int)ms + 1;
}

/* read_with_watchdog - the pipe until EOF; 0, or -1 when the deadline passed */
static int read_with_watchdog(int fd, double timeout_s, char **buf, size_t *len, int *overflow)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)timeout_s;
    deadline.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    size_t cap = 0;
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int left = ms_left(&deadline);
        if (left == 0)
            return -1;
        int rc = poll(&pfd, 1, left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0)
            return -1;
        if (*len + 65536 + 1 > cap) {
            cap = cap ? 2 * cap : 65536 * 2;
            char *p = realloc(*buf, cap);
            if (p == NULL)
                abort();
            *buf = p;
        }
        ssize_t n = read(fd, *buf + *len, cap - *len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        if (*len + (size_t)n > ISOLATE_MAX_PAYLOAD) {
            *overflow = 1;      /* keep draining, so the child is not stuck writing */
            continue;
        }
        *len += (size_t)n;
        (*buf)[*len] = '\0';
    }
}

/* isolate_call - run fn in a child, watch it, collect what it left */
void isolate_call(isolate_fn fn, void *arg, double timeout_s, struct isolate_outcome *out)
{
    assert(fn != NULL && timeout_s > 0);
    memset(out, 0, sizeof *out);
    /* The hook watch and the scheduler's figures (sim_sched.h), shared:
     * the parent reads both after a crash or a kill. */
    struct shared_pages {
        struct hook_watch watch;
        struct sim_sched_stats sched;
    } *pages = mmap(NULL, sizeof *pages, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int fds[2];
    if (pages == MAP_FAILED || pipe(fds) < 0) {
        if (pages != MAP_FAILED)
            munmap(pages, sizeof *pages);
        out->how = ISOLATE_FORK_FAILED;
        return;
    }
    memset(pages, 0, sizeof *pages);
    struct hook_watch *page = &pages->watch;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        munmap(pages, sizeof *pages);
        out->how = ISOLATE_FORK_FAILED;
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        child_setup(page);
        sim_sched_publish_to(&pages->sched);
        size_t len = 0;
        char *payload = fn(arg, &len);
        int rc = payload ? write_all(fds[1], payload, len) : -1;
        free(payload);
        page->result_sent = rc == 0;
        /* The write end stays open until the process is gone: EOF then
         * means the child is finished, and the watchdog covers its exit. */
        fflush(NULL);
        if (child_checked_leaks)
            _exit(rc == 0 ? 0 : 3);     /* the leaks were judged already (leak_check) */
        exit(rc == 0 ? 0 : 3);
    }
    close(fds[1]);
    char *buf = NULL;
    size_t len = 0;
    int overflow = 0;
    int timed_out = read_with_watchdog(fds[0], timeout_s, &buf, &len, &overflow) < 0;
    if (timed_out)
        kill(pid, SIGKILL);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    out->watch = *page;
    memcpy(&out->sched, (const void *)&pages->sched, sizeof out->sched);
    munmap(pages, sizeof *pages);
    out->exit_called = out->watch.exit_called;
    if (out->watch.result_sent && !overflow) {
        out->payload = buf ? buf : strdup("");
        out->len = len;
    } else {
        free(buf);
    }
    if (timed_out) {
        out->how = ISOLATE_TIMED_OUT;
    } else if (WIFSIGNALED(status)) {
        out->how = ISOLATE_SIGNALED;
        out->signal = WTERMSIG(status);
    } else if (out->watch.signal != 0 && out->payload == NULL) {
        /* A sanitizer reported the signal and exited: the signal is the story. */
        out->how = ISOLATE_SIGNALED;
        out->signal = out->watch.signal;
        out->exit_status = WEXITSTATUS(status);
    } else {
        out->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        out->how = out->payload && out->exit_status == 0 ? ISOLATE_REPORTED : ISOLATE_EXITED;
    }
}

/* isolate_outcome_free - release the payload */
void isolate_outcome_free(struct isolate_outcome *out)
{
    free(out->payload);
    out->payload = NULL;
}

/* ---- run_result over the pipe ------------------------------------------ */

struct isolated_run {
    const struct scn_scenario *sc;
    const struct run_opts *o;
};


/* text - a JSON string for s, or null; text from a remote need not be UTF-8,
 * and json_string()/json_pack("s") would drop it (trace_summary_text
 * spells such bytes \xHH instead) */
static json_t *text(const char *s)
{
    return s ? trace_summary_text(s, strlen(s)) : json_null();
}

/* result_to_json - everything the parent reports, in JSON */
static json_t *result_to_json(const struct run_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "verdict", json_integer(r->verdict));
    json_object_set_new(o, "exit_code", json_integer(r->exit_code));
    json_object_set_new(o, "seed", json_integer((json_int_t)r->seed));
    json_object_set_new(o, "digest", json_string(r->digest));
    json_t *ex = json_array();
    for (int i = 0; i < r->nexp; i++)
        json_array_append_new(ex, json_pack("{s:b, s:i, s:o, s:o}", "passed", r->exp[i].passed,
                                            "line", r->exp[i].line, "what", text(r->exp[i].what),
                                            "diff", text(r->exp[i].diff)));
    json_object_set_new(o, "exp", ex);
    json_t *ms = json_array();
    for (int i = 0; i < r->nmsgs; i++) {
        const struct msg_summary *m = &r->msgs[i];
        json_array_append_new(ms, json_pack("{s:I, s:s?, s:I, s:i, s:i, s:i, s:i, s:i, s:o}",
                                            "id", (json_int_t)m->id, "fate", m->fate,
                                            "done_at", (json_int_t)m->done_at, "attempts", m->attempts,
                                            "nrcpts", m->nrcpts, "delivered", m->delivered,
                                            "failed", m->failed, "pending", m->pending,
                                            "last_note", text(m->last_note)));
        if (m->detail)
            json_object_set(json_array_get(ms, json_array_size(ms) - 1), "detail", m->detail);
    }
    json_object_set_new(o, "msgs", ms);
    json_t *vs = json_array();
    for (int i = 0; i < r->nviolations; i++)
        json_array_append_new(vs, text(r->violations[i]));
    json_object_set_new(o, "violations", vs);
    json_object_set_new(o, "error", text(r->error));
    json_object_set_new(o, "why", text(r->why));
    json_object_set_new(o, "events", json_integer((json_int_t)r->events));
    json_object_set_new(o, "end", json_integer((json_int_t)r->end));
    json_object_set_new(o, "connections", json_integer((json_int_t)r->connections));
    json_object_set_new(o, "trace_records", json_integer((json_int_t)r->trace_records));
    json_object_set_new(o, "trace_errno", json_integer(r->trace_errno));
    if (r->summary)
        json_object_set(o, "summary", r->summary);
    return o;
}

/* dup_or_null - strdup of a JSON string, NULL for anything else */
static char *dup_or_null(json_t *v)
{
    const char *s = json_string_value(v);
    char *p = s ? strdup(s) : NULL;
    if (s && p == NULL)
        abort();
    return p;
}

/* static_fate - the parent's copy of a fate name (msg_summary keeps a pointer) */
static const char *static_fate(const char *fate)
{
    static const char *const fates[] = { "delivered", "bounced", "deferred", "partial" };
    for (size_t i = 0; fate && i < sizeof fates / sizeof fates[0]; i++)
        if (strcmp(fates[i], fate) == 0)
            return fates[i];
    return "?";
}

/* result_from_json - rebuild r from the child's JSON; -1 if it is not one */
static int result_from_json(const char *text, struct run_result *r)
{
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    r->verdict = (enum run_verdict)json_integer_value(json_object_get(o, "verdict"));
    r->exit_code = (int)json_integer_value(json_object_get(o, "exit_code"));
    r->seed = (uint64_t)json_integer_value(json_object_get(o, "seed"));
    snprintf(r->digest, sizeof r->digest, "%s",
             json_string_value(json_object_get(o, "digest")) ?: "");
    json_t *ex = json_object_get(o, "exp");
    r->nexp = (int)json_array_size(ex);
    r->exp = calloc((size_t)r->nexp + 1, sizeof *r->exp);
    for (int i = 0; i < r->nexp; i++) {
        json_t *e = json_array_get(ex, (size_t)i);
        r->exp[i].passed = json_is_true(json_object_get(e, "passed"));
        r->exp[i].line = (int)json_integer_value(json_object_get(e, "line"));
        r->exp[i].what = dup_or_null(json_object_get(e, "what"));
        r->exp[i].diff = dup_or_null(json_object_get(e, "diff"));
    }
    json_t *ms = json_object_get(o, "msgs");
    r->nmsgs = (int)json_array_size(ms);
    r->msgs = calloc((size_t)r->nmsgs + 1, sizeof *r->msgs);
    for (int i = 0; i < r->nmsgs; i++) {
        json_t *m = json_array_get(ms, (size_t)i);
        struct msg_summary *s = &r->msgs[i];
        s->id = (unsigned long)json_integer_value(json_object_get(m, "id"));
        s->fate = static_fate(json_string_value(json_object_get(m, "fate")));
        s->done_at = json_integer_value(json_object_get(m, "done_at"));
        s->attempts = (int)json_integer_value(json_object_get(m, "attempts"));
        s->nrcpts = (int)json_integer_value(json_object_get(m, "nrcpts"));
        s->delivered = (int)json_integer_value(json_object_get(m, "delivered"));
        s->failed = (int)json_integer_value(json_object_get(m, "failed"));
        s->pending = (int)json_integer_value(json_object_get(m, "pending"));
        snprintf(s->last_note, sizeof s->last_note, "%s",
                 json_string_value(json_object_get(m, "last_note")) ?: "");
        s->detail = json_incref(json_object_get(m, "detail"));
    }
    json_t *vs = json_object_get(o, "violations");
    r->nviolations = (int)json_array_size(vs);
    r->violations = calloc((size_t)r->nviolations + 1, sizeof *r->violations);
    for (int i = 0; i < r->nviolations; i++)
        r->violations[i] = dup_or_null(json_array_get(vs, (size_t)i));
    r->error = dup_or_null(json_object_get(o, "error"));
    r->why = dup_or_null(json_object_get(o, "why"));
    r->events = (uint64_t)json_integer_value(json_object_get(o, "events"));
    r->end = json_integer_value(json_object_get(o, "end"));
    r->connections = (unsigned long)json_integer_value(json_object_get(o, "connections"));
    r->trace_records = (unsigned long)json_integer_value(json_object_get(o, "trace_records"));
    r->trace_errno = (int)json_integer_value(json_object_get(o, "trace_errno"));
    r->summary = json_incref(json_object_get(o, "summary"));
    json_decref(o);
    if (r->exp == NULL || r->msgs == NULL || r->violations == NULL)
        abort();
    return 0;
}

/*
 * child_outputs - the child's own trace stream, and plugins' stdout to stderr
 *
 * The trace goes through a stream of the child's own on a copy of the
 * parent's descriptor, so that the child knows the first write error and
 * can report it (trace_errno).  Then descriptor 1 becomes a copy of 2:
 * what a plugin prints is a diagnostic, and must not mix into mtasim's
 * output - least of all into "--trace -", a trace on standard output.
 * Returns the child's trace outfile, or NULL (o->trace_out then as given).
 */
static struct outfile *child_outputs(struct run_opts *o, int *trace_errno)
{
    struct outfile *tf = NULL;
    *trace_errno = 0;
    if (o->trace_file != NULL) {
        int fd = dup(outfile_fileno(o->trace_file));
        tf = fd >= 0 ? outfile_fd(fd, 1) : NULL;
        if (tf == NULL) {
            *trace_errno = errno;
            if (fd >= 0)
                close(fd);
            o->trace_out = NULL;
        } else {
            outfile_set_line(tf);       /* a run killed mid-way leaves every record before it */
            o->trace_out = outfile_stream(tf);
        }
        o->trace_file = tf;
    }
    fflush(stdout);
    dup2(STDERR_FILENO, STDOUT_FILENO);
    return tf;
}

/* set_error - r->error from a format (malloc'd) */
static void set_error(struct run_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct run_result *r, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(r->error);
    r->error = strdup(buf);
}

/*
 * leak_check - in a sanitizer build, LeakSanitizer's check once the run is
 * torn down (its plugins unloaded), and whose the leak is
 *
 * Without it, the check at exit reported the leak after the result was
 * sent, and the run became an internal error (exit 3) whoever leaked.
 * The core and the simulator are leak-free on every bundled scenario (CI
 * runs them all under ASan), so with plugins loaded the leak is theirs:
 * exit 4, like any other plugin misbehaviour; without plugins it is the
 * core's: exit 3.  LeakSanitizer's report, on stderr, names the
 * allocations either way.
 */
static void leak_check(const struct scn_scenario *sc, const struct run_opts *o,
                       struct run_result *r)
{
    if (__lsan_do_recoverable_leak_check == NULL)
        return;
    child_checked_leaks = 1;
    if (__lsan_do_recoverable_leak_check() == 0)
        return;
    int plugins = o->nplugins + sc->nplugins;
    if (plugins > 0 && r->exit_code < 4) {
        char names[512] = "";
        size_t n = 0;
        for (int i = 0; i < plugins && n < sizeof names; i++) {
            const struct scn_plugin *pl = i < o->nplugins ? &o->plugins[i]
                                                          : &sc->plugins[i - o->nplugins];
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", pl->name);
        }
        free(r->why);
        r->why = strdup("plugin leaked memory");
        set_error(r, "a plugin leaked memory (LeakSanitizer's report above names the "
                  "allocations; plugins loaded: %s)", names);
        r->verdict = RUN_PLUGIN;
        r->exit_code = 4;
    } else if (plugins == 0 && r->exit_code < 3) {
        free(r->why);
        r->why = strdup("internal error: leaked memory");
        set_error(r, "the core leaked memory, no plugin loaded (LeakSanitizer's report above)");
        r->verdict = RUN_ERROR;
        r->exit_code = 3;
    }
}

/* run_in_child - the isolate_fn: run the scenario, hand back JSON */
static char *run_in_child(void *arg, size_t *len)
{
    const struct isolated_run *ir = arg;
    /* Virtual time of a crash before the first hook call: the epoch. */
    hook_watch_get()->vtime = ir->sc->epoch;
    struct run_opts o = *ir->o;
    int trace_errno;
    struct outfile *tf = child_outputs(&o, &trace_errno);
    struct run_result r;
    runner_run(ir->sc, &o, &r);
    leak_check(ir->sc, &o, &r);
    if (tf != NULL)
        trace_errno = outfile_close(tf);
    else if (o.trace_out)
        fflush(o.trace_out);
    r.trace_errno = trace_errno;
    json_t *j = result_to_json(&r);
    run_result_free(&r);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    *len = text ? strlen(text) : 0;
    return text;
}

/* run_result_explain - what to report when the child could not; see isolate.h */
void run_result_explain(mta_usec_t epoch, double timeout_s, const struct isolate_outcome *out,
                        struct run_result *r)
{
    const struct hook_watch *w = &out->watch;
    int in_plugin = w->depth > 0 && w->plugin[0] != '\0' && strcmp(w->plugin, "core") != 0;
    char t[32], sig[24];
    const char *at = trace_time_str(w->vtime - epoch, t);
    r->verdict = in_plugin ? RUN_PLUGIN : RUN_ERROR;
    r->exit_code = in_plugin ? 4 : 3;
    const char *plugin = w->plugin, *hook = w->hook;
    switch (out->how) {
    case ISOLATE_SIGNALED:
        r->why = strdup(in_plugin ? "plugin crashed" : "internal error: crashed");
        if (in_plugin)
            set_error(r, "plugin %s crashed with %s in hook %s at %s", plugin,
                      signal_name(out->signal, sig), hook, at);
        else
            set_error(r, "the core crashed with %s, no plugin running (last hook call at %s)",
                      signal_name(out->signal, sig), at);
        break;
    case ISOLATE_TIMED_OUT:
        r->why = strdup(in_plugin ? "plugin hung" : "internal error: hung");
        if (in_plugin)
            set_error(r, "plugin %s did not return from hook %s within %g s of wall-clock time "
                      "(killed) at %s", plugin, hook, timeout_s, at);
        else {
            /* Where the clock got to, and what kept the run busy: a loop
             * shows as one kind of event by the million. */
            char reached[32], busiest[200];
            sim_sched_busiest(&out->sched, 3, busiest, sizeof busiest);
            set_error(r, "the run did not finish within %g s of wall-clock time (killed) at "
                      "virtual time %s after %llu events; busiest events: %s; last hook call at %s",
                      timeout_s, trace_time_str(out->sched.now - epoch, reached),
                      (unsigned long long)out->sched.events, busiest[0] ? busiest : "none", at);
        }
        break;
    case ISOLATE_EXITED:
        r->why = strdup(in_plugin ? "plugin exited" : "internal error: exited");
        if (in_plugin)
            set_error(r, "plugin %s %s(%d) in hook %s at %s", plugin,
                      out->exit_called ? "called exit" : "ended the process with _exit",
                      out->exit_status, hook, at);
        else
            set_error(r, "the run's process exited with status %d %s (see its messages above)",
                      out->exit_status, out->payload ? "after reporting" : "before reporting");
        break;
    case ISOLATE_FORK_FAILED:
        r->why = strdup("internal error");
        set_error(r, "cannot start the run's process: %s", strerror(errno));
        r->verdict = RUN_ERROR;
        r->exit_code = 3;
        break;
    case ISOLATE_REPORTED:
        assert(0 && "a reported run is not a failure");
        break;
    }
}

/* runner_run_isolated - runner_run in a child; see isolate.h */
int runner_run_isolated(const struct scn_scenario *sc, const struct run_opts *o,
                        double timeout_s, struct run_result *r)
{
    memset(r, 0, sizeof *r);
    struct isolated_run ir = { sc, o };
    struct isolate_outcome out;
    isolate_call(run_in_child, &ir, timeout_s, &out);
    if (out.how == ISOLATE_REPORTED && result_from_json(out.payload, r) == 0) {
        isolate_outcome_free(&out);
        return r->exit_code;
    }
    if (out.how == ISOLATE_REPORTED)
        out.how = ISOLATE_EXITED;       /* sent something that is not a result */
    if (out.payload != NULL && out.how == ISOLATE_EXITED && result_from_json(out.payload, r) == 0) {
        /* A full result, then a non-zero exit: a sanitizer's report at exit. */
        free(r->why);
        free(r->error);
        r->why = NULL;
        r->error = NULL;
    }
    r->seed = o->seed_set ? o->seed : sc->seed;
    run_result_explain(sc->epoch, timeout_s, &out, r);
    isolate_outcome_free(&out);
    return r->exit_code;
}
