/* dns_ds.h - where Momentum 3 documents domain_record and connection; in
 * mtasim they are in domain.h and connection.h. */
#ifndef MTASIM_DNS_DS_H
#define MTASIM_DNS_DS_H
#include "domain.h"
#include "connection.h"
#endif
