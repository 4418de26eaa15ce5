/*
 * hook_types.h - the types hook providers receive; included by every
 * hooks/core/<name>.h, so a provider written from a Momentum hook page
 * compiles with the hook's header alone
 */
#ifndef MTASIM_HOOK_TYPES_H
#define MTASIM_HOOK_TYPES_H

#include <stdint.h>
#include <stddef.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "momentum_types.h"
#include "domain.h"
#include "mail_queue.h"
#include "skiplist.h"
#include "ec_message.h"
#include "message.h"
#include "connection.h"
#include "smtp.h"
#include "validate.h"

/* What a non-void provider returns where the documentation speaks of
 * EC_HOOK_* values (final_validation2; Momentum 3, "Hooking API"). */
#define EC_HOOK_CONT 0
#define EC_HOOK_DONE 1
#define EC_HOOK_RETRY 2

#endif
