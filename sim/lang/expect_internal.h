/*
 * expect_internal - what expect.c and expect_stream.c share: patterns with
 * their regular expressions compiled, and the tests of one record against
 * a pattern or an expectation's scope.  Not for other modules.
 */
#ifndef MTASIM_SIM_EXPECT_INTERNAL_H
#define MTASIM_SIM_EXPECT_INTERNAL_H

#include <regex.h>
#include <stdint.h>

#include "scenario.h"
#include "trace_store.h"

struct compiled {
    const struct scn_pattern *p;
    mta_usec_t epoch;               /* for "at" matchers: the trace's epoch */
    regex_t re[SCN_MAX_MATCHERS];
    int has_re[SCN_MAX_MATCHERS];
};

/* e's patterns, each regex compiled once, "at" read from epoch (calloc'd; free_compiled). */
struct compiled *compile_patterns(const struct scn_expect *e, mta_usec_t epoch);
void free_compiled(struct compiled *c, int n);
/* The index of the first matcher of c failing on r, -1 if all hold. */
int first_failing(const struct compiled *c, const struct trace_rec *r);
/* r is of the pattern's kind and name. */
int same_event(const struct trace_rec *r, const struct scn_pattern *p);
/* r passes e's "for domain|message|conn" scope. */
int in_scope_of(const struct scn_expect *e, const struct trace_rec *r);
/* r is in scope and of a kind and name one of e's patterns names. */
int mentioned(const struct scn_expect *e, const struct trace_rec *r);
/* "expect never" / "expect count ... OP N" holds with hits matching records. */
int count_holds(const struct scn_expect *e, int64_t hits);
/* r is a "client NAME" record of client n (and of that script line, if line > 0). */
int is_client_rec(const struct trace_rec *r, const char *name, int n, int line);

#endif
