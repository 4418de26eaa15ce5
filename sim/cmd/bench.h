/*
 * bench - "mtasim bench": synthetic worlds at scale, and the figures
 *
 * SYNOPSIS
 *   mtasim bench [--mode mix|reuse|queued] [--messages N] [--domains D]
 *                [--hours H] [--runs R] [--seed S] [--trace FILE]
 *
 * DESCRIPTION
 *   See docs/performance.md.  Each run happens in a forked child, so peak
 *   RSS is the run's own; the figures printed are medians over the runs.
 */
#ifndef MTASIM_SIM_BENCH_H
#define MTASIM_SIM_BENCH_H

int bench_main(int argc, char **argv);

#endif
