/* message_compat.h - where Momentum 3 documents abstract_message; in mtasim
 * it is ec_message (ec_message.h, momentum_types.h). */
#ifndef MTASIM_MESSAGE_COMPAT_H
#define MTASIM_MESSAGE_COMPAT_H
#include "ec_message.h"
#endif
