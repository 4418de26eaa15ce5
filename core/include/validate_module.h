/* validate_module.h - where Momentum 3 documents validate_context; in mtasim it is in validate.h. */
#ifndef MTASIM_VALIDATE_MODULE_H
#define MTASIM_VALIDATE_MODULE_H
#include "validate.h"
#endif
