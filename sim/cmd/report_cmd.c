/*
 * report_cmd - "mtasim report" and "mtasim explore": the Python tools
 *
 * See report_cmd.h.  Nothing is generated here: this file only finds the
 * Python script and hands it the command line.
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

/* script_in - DIR/SCRIPT into buf when that file exists; 1 or 0 */
static int script_in(const char *dir, const char *script_name, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", dir, script_name);
    return n > 0 && (size_t)n < size && access(buf, R_OK) == 0;
}

/* python_tool_main - find the script of command cmd and exec it; returns only on error */
static int python_tool_main(const char *cmd, const char *script_name, int argc, char **argv)
{
    char script[PATH_MAX + 32], dir[PATH_MAX] = "";
    const char *env_dir = getenv("MTASIM_REPORTS_DIR");
    int found;
    if (env_dir && *env_dir) {
        found = script_in(env_dir, script_name, script, sizeof script);
        if (!found) {
            fprintf(stderr, "mtasim %s: no %s in $MTASIM_REPORTS_DIR (%s)\n", cmd, script_name,
                    env_dir);
            return 2;
        }
    } else {
        found = install_dir(INSTALL_REPORTS, dir, sizeof dir) == 0
                && script_in(dir, script_name, script, sizeof script);
        if (!found) {
            fprintf(stderr, "mtasim %s: cannot find %s in %s "
                    "(set MTASIM_REPORTS_DIR to the reports/ directory)\n", cmd, script_name,
                    dir[0] ? dir : "the installation (PREFIX/share/mtasim/reports)");
            return 2;
        }
    }
    if (access(REPORT_PYTHON, X_OK) != 0) {
        fprintf(stderr, "mtasim %s: needs %s (Debian package python3): %s\n", cmd,
                REPORT_PYTHON, strerror(errno));
        return 2;
    }
    /* python3 -B SCRIPT ARGS...: argv[0] ("report") gives way to the script. */
    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (args == NULL) {
        fprintf(stderr, "mtasim %s: out of memory\n", cmd);
        return 2;
    }
    args[0] = (char *)REPORT_PYTHON;
    args[1] = (char *)"-B";     /* no __pycache__ next to an installed script */
    args[2] = script;
    for (int i = 1; i < argc; i++)
        args[i + 2] = argv[i];
    fflush(NULL);
    execv(REPORT_PYTHON, args);
    fprintf(stderr, "mtasim %s: cannot run %s: %s\n", cmd, REPORT_PYTHON, strerror(errno));
    free(args);
    return 2;
}

/* report_cmd_main - find the report generator and exec it; returns only on error */
int report_cmd_main(int argc, char **argv)
{
    return python_tool_main("report", "mtasim_report.py", argc, argv);
}

/* explore_cmd_main - the explorer runs this very binary: MTASIM_BIN names it */
int explore_cmd_main(int argc, char **argv)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "mtasim explore: cannot find its own binary: %s\n", strerror(errno));
        return 2;
    }
    self[n] = '\0';
    if (setenv("MTASIM_BIN", self, 1) != 0) {
        fprintf(stderr, "mtasim explore: cannot set MTASIM_BIN: %s\n", strerror(errno));
        return 2;
    }
    return python_tool_main("explore", "mtasim_explore.py", argc, argv);
}
