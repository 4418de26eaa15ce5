/*
 * faketime - the libfaketime bridge: plugins that read the wall clock see virtual time
 *
 * See faketime.h for the contract and docs/faketime.md for the user's view.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faketime.h"
#include "parse.h"

#ifndef MTASIM_MULTIARCH
#define MTASIM_MULTIARCH ""
#endif

#define FAKETIME_SONAME "libfaketime.so.1"
/* Where distributions put it; the multiarch directory (Debian) first. */
static const char *const library_dirs[] = {
    "/usr/lib/" MTASIM_MULTIARCH "/faketime",
    "/usr/lib/faketime",
    "/usr/lib64/faketime",
    "/usr/local/lib/faketime",
    "/usr/local/lib",
};
/* What libfaketime is told before the first run sets the clock: a frozen,
 * recognisable instant, never the real time. */
#define FAKETIME_INITIAL "1970-01-01 00:00:00.0000000005"
/* Variables of an outer libfaketime session that would change how ours
 * reads $FAKETIME. */
static const char *const foreign_vars[] = {
    "FAKETIME_FMT", "FAKETIME_TIMESTAMP_FILE", "FAKETIME_FOLLOW_FILE", "FAKETIME_SHARED",
    "FAKETIME_START_AFTER_SECONDS", "FAKETIME_START_AFTER_NUMCALLS",
    "FAKETIME_STOP_AFTER_SECONDS", "FAKETIME_STOP_AFTER_NUMCALLS", "FAKETIME_XRESET",
    "FAKETIME_CACHE_DURATION", "FAKETIME_SPAWN_TARGET",
};

static enum faketime_state state = FAKETIME_UNUSED;
static char library[PATH_MAX];
static char why_off[PATH_MAX + 256];

/*
 * The environment string libfaketime parses on every call, handed to
 * putenv() once and rewritten in place.  Layout (fixed offsets):
 *   FAKETIME=YYYY-MM-DD HH:MM:SS.uuuuuu0005
 *   0        9                  28     35
 * "0005" is the half nanosecond that makes the truncation exact.
 */
#define ENV_PREFIX "FAKETIME="
#define ENV_DATE_AT 9           /* the date */
#define ENV_FRAC_AT 28          /* the '.' before the microseconds */
static char env_faketime[64] = ENV_PREFIX FAKETIME_INITIAL;
static sim_usec env_usec = INT64_MIN;       /* what env_faketime says now */
static int64_t env_second = INT64_MIN;      /* its whole second */

/* ---- finding the libraries ------------------------------------------------ */

/* find_library - libfaketime's path into library[]; 0, or -1 with why_off */
static int find_library(void)
{
    const char *forced = getenv("MTASIM_LIBFAKETIME");
    if (forced != NULL) {
        if (forced[0] == '/' && access(forced, R_OK) == 0) {
            snprintf(library, sizeof library, "%s", forced);
            return 0;
        }
        snprintf(why_off, sizeof why_off, "libfaketime is not installed "
                 "(MTASIM_LIBFAKETIME=%s is not a readable absolute path)", forced);
        return -1;
    }
    for (size_t i = 0; i < sizeof library_dirs / sizeof library_dirs[0]; i++) {
        if (strstr(library_dirs[i], "//") != NULL)
            continue;       /* no multiarch triplet known at build time */
        snprintf(library, sizeof library, "%s/%s", library_dirs[i], FAKETIME_SONAME);
        if (access(library, R_OK) == 0)
            return 0;
    }
    library[0] = '\0';
    snprintf(why_off, sizeof why_off, "libfaketime is not installed (no %s in /usr/lib/%s/faketime "
             "or the usual places; Debian package: libfaketime)", FAKETIME_SONAME,
             MTASIM_MULTIARCH[0] ? MTASIM_MULTIARCH : "*");
    return -1;
}

struct object_search {
    const char *prefix;     /* of the file name, e.g. "libasan.so" */
    char path[PATH_MAX];    /* the first loaded object found, "" if none */
};

/* match_object - dl_iterate_phdr callback: stop at the first object named prefix* */
static int match_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct object_search *s = arg;
    (void)size;
    const char *name = info->dlpi_name;
    if (name == NULL || name[0] == '\0')
        return 0;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (strncmp(base, s->prefix, strlen(s->prefix)) != 0)
        return 0;
    snprintf(s->path, sizeof s->path, "%s", name);
    return 1;
}

/* loaded_object - the path of a loaded object whose name starts with prefix; "" if none */
static const char *loaded_object(const char *prefix, struct object_search *s)
{
    s->prefix = prefix;
    s->path[0] = '\0';
    dl_iterate_phdr(match_object, s);
    return s->path;
}

/* ---- the re-execution ----------------------------------------------------- */

/* preload_list - "[ASAN_RUNTIME:]LIBFAKETIME[:what LD_PRELOAD had]" (malloc'd)
 *
 * AddressSanitizer insists on being the first object loaded; an existing
 * LD_PRELOAD keeps its entries after ours, minus earlier copies of both. */
static char *preload_list(void)
{
    struct object_search asan;
    const char *asan_path = loaded_object("libasan.so", &asan);
    const char *old = getenv("LD_PRELOAD");
    size_t cap = strlen(asan_path) + strlen(library) + (old ? strlen(old) : 0) + 4;
    char *list = malloc(cap);
    if (list == NULL)
        return NULL;
    snprintf(list, cap, "%s%s%s", asan_path, asan_path[0] ? ":" : "", library);
    for (const char *p = old; p && *p;) {
        size_t n = strcspn(p, ": ");
        int ours = (n == strlen(library) && strncmp(p, library, n) == 0)
                   || (asan_path[0] && n == strlen(asan_path) && strncmp(p, asan_path, n) == 0);
        if (n > 0 && !ours) {
            size_t len = strlen(list);
            snprintf(list + len, cap - len, ":%.*s", (int)n, p);
        }
        p += n;
        p += strspn(p, ": ");
    }
    return list;
}

/* clear_stale_shm - remove libfaketime's leftovers named after our PID
 *
 * libfaketime creates /dev/shm/faketime_shm_PID and sem.faketime_sem_PID
 * at start and exits(1) when they exist already - which they do when an
 * earlier process with this PID was killed.  execv() keeps the PID and no
 * other live process has it, so whatever carries it now is stale. */
static void clear_stale_shm(void)
{
    char name[64];
    long pid = (long)getpid();
    snprintf(name, sizeof name, "/dev/shm/faketime_shm_%ld", pid);
    unlink(name);
    snprintf(name, sizeof name, "/dev/shm/sem.faketime_sem_%ld", pid);
    unlink(name);
}

/* reexec - run this program again under libfaketime; returns only on failure */
static void reexec(char **argv)
{
    char *list = preload_list();
    if (list == NULL) {
        snprintf(why_off, sizeof why_off, "libfaketime not loaded: out of memory");
        return;
    }
    for (size_t i = 0; i < sizeof foreign_vars / sizeof foreign_vars[0]; i++)
        unsetenv(foreign_vars[i]);
    int rc = setenv("LD_PRELOAD", list, 1);
    free(list);
    /* FAKETIME_NO_CACHE: re-read $FAKETIME on every call, or updates would
     * show up to 10 s late.  Both spellings of "do not fake the monotonic
     * clock": DONT_FAKE_MONOTONIC is what releases before 0.9.9 read. */
    rc |= setenv("FAKETIME_NO_CACHE", "1", 1);
    rc |= setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
    rc |= setenv("DONT_FAKE_MONOTONIC", "1", 1);
    rc |= setenv("TZ", "UTC", 1);
    /* File timestamps stay real: only the clock is virtual. */
    rc |= setenv("NO_FAKE_STAT", "1", 1);
    rc |= setenv("FAKETIME", FAKETIME_INITIAL, 1);
    rc |= setenv(FAKETIME_EXEC_GUARD, "1", 1);
    if (rc != 0) {
        snprintf(why_off, sizeof why_off, "libfaketime not loaded: cannot set the environment: %s",
                 strerror(errno));
        return;
    }
    clear_stale_shm();
    fflush(NULL);
    execv("/proc/self/exe", argv);
    snprintf(why_off, sizeof why_off, "libfaketime not loaded: cannot re-execute /proc/self/exe: %s",
             strerror(errno));
}

/* ---- the command's decision ----------------------------------------------- */

/* faketime_wanted - does a run of these files load plugins (or demand the bridge)? */
int faketime_wanted(char *const *files, int nfiles, int ncli_plugins)
{
    if (ncli_plugins > 0)
        return 1;
    /* Parse errors are ignored here: the runs report them. */
    for (int i = 0; i < nfiles; i++) {
        struct scn_error err;
        struct scn_scenario *sc = scn_parse_file(files[i], &err);
        int wants = sc != NULL && (sc->nplugins > 0 || sc->requires_faketime);
        scn_free(sc);
        if (wants)
            return 1;
    }
    return 0;
}

/* warn_once - the one stderr line that says plugins see the real clock */
static void warn_once(void)
{
    static int warned;
    if (warned++)
        return;
    fprintf(stderr, "mtasim: warning: %s: plugins that read the wall clock see real time, "
            "not virtual time (docs/faketime.md)\n", why_off);
}

/* faketime_setup - decide, and re-execute under the preload when needed */
void faketime_setup(char **argv, int disabled, int wanted)
{
    assert(argv != NULL && argv[0] != NULL);
    const char *guard = getenv(FAKETIME_EXEC_GUARD);
    struct object_search found;
    if (disabled) {
        state = FAKETIME_DISABLED;
        snprintf(why_off, sizeof why_off, "the libfaketime bridge is off (--no-faketime)");
        return;
    }
    if (!wanted) {
        state = FAKETIME_UNUSED;
        snprintf(why_off, sizeof why_off, "no plugin is loaded");
        return;
    }
    if (guard != NULL && strcmp(guard, "1") == 0) {
        /* The second process: the preload acted, or it never will.  The
         * guard goes, so that an mtasim a plugin starts decides afresh. */
        unsetenv(FAKETIME_EXEC_GUARD);
        if (loaded_object("libfaketime", &found)[0] != '\0') {
            snprintf(library, sizeof library, "%s", found.path);
            state = FAKETIME_ON;
            putenv(env_faketime);
            return;
        }
        snprintf(why_off, sizeof why_off, "libfaketime did not load (LD_PRELOAD=%s)",
                 getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
        state = FAKETIME_FAILED;
        warn_once();
        return;
    }
    if (find_library() < 0) {
        state = FAKETIME_MISSING;
        warn_once();
        return;
    }
    reexec(argv);
    state = FAKETIME_FAILED;
    warn_once();
}

/* faketime_state - what faketime_setup() decided */
enum faketime_state faketime_state(void)
{
    return state;
}

/* faketime_on - plugin clocks follow virtual time */
int faketime_on(void)
{
    return state == FAKETIME_ON;
}

/* faketime_why_off - one line: why the bridge is not on */
const char *faketime_why_off(void)
{
    return state == FAKETIME_ON ? "the libfaketime bridge is on" : why_off;
}

/* faketime_library - the library driven (or that would be), "" if none */
const char *faketime_library(void)
{
    return library;
}

/* put_digits - n decimal digits of v at p, zero-padded (v >= 0) */
static void put_digits(char *p, int n, int64_t v)
{
    assert(v >= 0);
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* faketime_set - make the wall clock of plugin code read abs_usec (UTC) */
void faketime_set(sim_usec abs_usec)
{
    if (state != FAKETIME_ON || abs_usec == env_usec)
        return;
    assert(env_faketime[ENV_FRAC_AT] == '.' && strlen(env_faketime) == ENV_FRAC_AT + 11);
    /* Floor division: an instant before 1970 still has a non-negative fraction. */
    int64_t sec = abs_usec / 1000000, frac = abs_usec % 1000000;
    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    if (sec != env_second) {
        struct tm tm;
        time_t t = (time_t)sec;
        if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
            fprintf(stderr, "faketime_set: virtual time %" PRId64 " us is outside years 0-9999\n",
                    (int64_t)abs_usec);
            abort();
        }
        char date[24];
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
        assert(strlen(date) == ENV_FRAC_AT - ENV_DATE_AT);
        memcpy(env_faketime + ENV_DATE_AT, date, strlen(date));
        env_second = sec;
    }
    put_digits(env_faketime + ENV_FRAC_AT + 1, 6, frac);
    env_usec = abs_usec;
}

/* faketime_clock_moved - sim_sched_on_advance() callback */
void faketime_clock_moved(void *arg, sim_usec now)
{
    (void)arg;
    faketime_set(now);
}
