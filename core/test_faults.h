/*
 * test_faults - deliberate bugs, compiled in only for the invariant tests
 *
 * SYNOPSIS
 *   if (MTA_FAULT(FAULT_SKIP_CLOSE)) ...        // 0 in every normal build
 *
 * DESCRIPTION
 *   tests/unit/test_invariants.c builds the core and the simulator once
 *   more with -DMTASIM_TEST_FAULTS and sets mta_test_fault to make the core
 *   break one invariant on purpose; the test then checks that the run is
 *   judged a violation (exit code 3) with the right message.  In every
 *   other build MTA_FAULT() is the constant 0 and the compiler removes the
 *   faulty branches.
 */
#ifndef MTASIM_TEST_FAULTS_H
#define MTASIM_TEST_FAULTS_H

enum mta_test_fault {
    FAULT_NONE,
    FAULT_SKIP_CLOSE,           /* leave the connections open at shutdown */
    FAULT_DOUBLE_CLOSE,         /* close a connection twice */
    FAULT_SKIP_DEC_OUTBOUND,    /* forget dec_outbound_connections */
    FAULT_LOSE_MESSAGE,         /* drop a temporarily failed message instead of requeueing it */
    FAULT_DELIVER_TWICE,        /* record a delivery for a recipient twice */
    FAULT_IGNORE_CONN_LIMIT,    /* ignore max_outbound_connections */
    FAULT_TIME_BACKWARDS,       /* stamp a trace record a second in the past */
};

#ifdef MTASIM_TEST_FAULTS
extern int mta_test_fault;
#define MTA_FAULT(f) (mta_test_fault == (f))
#else
#define MTA_FAULT(f) 0
#endif

#endif
