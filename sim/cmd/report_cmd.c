/*
 * report_cmd - "mtasim report": result JSON -> JUnit XML, HTML, Markdown
 *
 * See report_cmd.h.  Nothing is generated here: this file only finds the
 * Python generator and hands it the command line.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "install_dirs.h"
#include "report_cmd.h"

#define REPORT_PYTHON "/usr/bin/python3"
#define REPORT_SCRIPT "mtasim_report.py"

/* script_in - DIR/mtasim_report.py into buf when that file exists; 1 or 0 */
static int script_in(const char *dir, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", dir, REPORT_SCRIPT);
    return n > 0 && (size_t)n < size && access(buf, R_OK) == 0;
}

/* report_cmd_main - find the generator and exec it; returns only on error */
int report_cmd_main(int argc, char **argv)
{
    char script[PATH_MAX + 32], dir[PATH_MAX] = "";
    const char *env_dir = getenv("MTASIM_REPORTS_DIR");
    int found;
    if (env_dir && *env_dir) {
        found = script_in(env_dir, script, sizeof script);
        if (!found) {
            fprintf(stderr, "mtasim report: no %s in $MTASIM_REPORTS_DIR (%s)\n", REPORT_SCRIPT,
                    env_dir);
            return 2;
        }
    } else {
        found = install_dir(INSTALL_REPORTS, dir, sizeof dir) == 0
                && script_in(dir, script, sizeof script);
        if (!found) {
            fprintf(stderr, "mtasim report: cannot find the report generator %s in %s "
                    "(set MTASIM_REPORTS_DIR to the reports/ directory)\n", REPORT_SCRIPT,
                    dir[0] ? dir : "the installation (PREFIX/share/mtasim/reports)");
            return 2;
        }
    }
    if (access(REPORT_PYTHON, X_OK) != 0) {
        fprintf(stderr, "mtasim report: needs %s (Debian package python3): %s\n", REPORT_PYTHON,
                strerror(errno));
        return 2;
    }
    /* python3 -B SCRIPT ARGS...: argv[0] ("report") gives way to the script. */
    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (args == NULL) {
        fprintf(stderr, "mtasim report: out of memory\n");
        return 2;
    }
    args[0] = (char *)REPORT_PYTHON;
    args[1] = (char *)"-B";     /* no __pycache__ next to an installed script */
    args[2] = script;
    for (int i = 1; i < argc; i++)
        args[i + 2] = argv[i];
    fflush(NULL);
    execv(REPORT_PYTHON, args);
    fprintf(stderr, "mtasim report: cannot run %s: %s\n", REPORT_PYTHON, strerror(errno));
    free(args);
    return 2;
}
