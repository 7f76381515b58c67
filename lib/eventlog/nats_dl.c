/*
 * nats_dl.c — resolves libnats at run time (see nats_dl.h for why).
 */
#include "nats_dl.h"

tb__nats_api_t tb__nats;

TB_DL_LOADER(tb__nats_load, tb__nats, TB__NATS_SYMBOLS, TB_NATS_SONAME, "libnats3.4")
