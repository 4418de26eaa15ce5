/*
 * record_fields - which fields each kind of trace record can carry
 *
 * SYNOPSIS
 *   const char *list = record_fields("dns", "query");     "name type n"
 *   int ok = record_field_possible("dns", "query", "rcode");   0
 *
 * DESCRIPTION
 *   What the expectation parser checks matchers and scopes against; see
 *   record_fields.c.  record_fields() returns NULL for a record that may
 *   carry any key (plugin note), "" for a name it does not know.
 */
#ifndef MTASIM_SIM_RECORD_FIELDS_H
#define MTASIM_SIM_RECORD_FIELDS_H

const char *record_fields(const char *kind, const char *name);
int record_field_possible(const char *kind, const char *name, const char *key);

#endif
