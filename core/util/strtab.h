/*
 * strtab - interned strings: one stable copy of each distinct text
 *
 * SYNOPSIS
 *   struct strtab *t = strtab_create();
 *   const char *s = strtab_intern(t, text, len);
 *   strtab_destroy(t);
 *
 * DESCRIPTION
 *   strtab_intern() returns a NUL-terminated copy of text[0..len) that
 *   lives until strtab_destroy(); the same text always gives the same
 *   pointer.  The core keeps reply texts and outcome notes this way: a
 *   run of a million messages sees a handful of distinct replies, and a
 *   malloc, a copy and a free per reply and recipient were a tenth of a
 *   large run's time (docs/performance.md).
 *
 *   Copies live in 64 KiB blocks; nothing is freed before the table.  The
 *   hash table is only probed, never iterated, so its layout cannot reach
 *   a trace.
 *
 * DIAGNOSTICS
 *   Exhausted memory or more than STRTAB_MAX_STRINGS distinct strings is
 *   fatal (util_panic, panic.h).
 */
#ifndef MTASIM_STRTAB_H
#define MTASIM_STRTAB_H

#include <stddef.h>

#define STRTAB_MAX_STRINGS (64u << 20)

struct strtab;

struct strtab *strtab_create(void);
void strtab_destroy(struct strtab *t);
const char *strtab_intern(struct strtab *t, const char *text, size_t len);
size_t strtab_count(const struct strtab *t);

#endif
