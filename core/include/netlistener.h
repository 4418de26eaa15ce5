/* netlistener.h - where Momentum 3 documents accept_construct; in mtasim it is in validate.h. */
#ifndef MTASIM_NETLISTENER_H
#define MTASIM_NETLISTENER_H
#include "validate.h"
#endif
