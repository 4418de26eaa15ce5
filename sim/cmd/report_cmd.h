/*
 * report_cmd - "mtasim report" (result JSON -> JUnit XML, HTML, Markdown) and "mtasim explore"
 *
 * SYNOPSIS
 *   return report_cmd_main(argc, argv);     argv[0] is "report"
 *
 * DESCRIPTION
 *   The generators are Python 3 (reports/mtasim_report.py, standard
 *   library only).  report_cmd_main() finds that script and replaces the
 *   process with
 *
 *     /usr/bin/python3 -B DIR/mtasim_report.py ARGS...
 *
 *   so the exit status is the generator's (0 written, 2 bad input or
 *   usage: see docs/cli.md).  DIR is the first of
 *     $MTASIM_REPORTS_DIR     when set: only there
 *     install_dir(INSTALL_REPORTS)   the build tree's <build>/reports (meson
 *                             copies reports/ there) or the installed copy,
 *                             PREFIX/share/mtasim/reports (install_dirs.h)
 *   that holds mtasim_report.py.
 *
 * DIAGNOSTICS
 *   No generator found, or no /usr/bin/python3: one line naming what was
 *   looked for and where, exit status 2.
 */
#ifndef MTASIM_SIM_REPORT_CMD_H
#define MTASIM_SIM_REPORT_CMD_H

int report_cmd_main(int argc, char **argv);

/* "mtasim explore" (docs/explore.md): the same, with DIR/mtasim_explore.py,
 * and MTASIM_BIN set to this binary's path, which the explorer runs. */
int explore_cmd_main(int argc, char **argv);

#endif
