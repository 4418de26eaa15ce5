/* hook_types.h - the types hook providers receive; included by every hooks/core/<name>.h */
#ifndef MTASIM_HOOK_TYPES_H
#define MTASIM_HOOK_TYPES_H

#include <stdint.h>
#include <stddef.h>
#include <time.h>
#include <sys/time.h>

#include "domain.h"
#include "message.h"
#include "connection.h"

#endif
