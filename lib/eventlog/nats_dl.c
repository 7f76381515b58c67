/*
 * nats_dl.c — resolves libnats at run time (see nats_dl.h for why).
 */
#include "nats_dl.h"

#include <pthread.h>
#include <stdio.h>

#include "tb/dl.h"

tb__nats_api_t tb__nats;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256];

static void load(void) {
  static const char *const names[] = {
#define TB__NATS_NAME_(name) #name,
      TB__NATS_SYMBOLS(TB__NATS_NAME_)
#undef TB__NATS_NAME_
  };
  void *fns[sizeof names / sizeof names[0]];
  tb_errbuf_t eb = {load_error, sizeof load_error};
  if (tb_dl_resolve(TB_NATS_SONAME, "libnats3.4", names, fns, sizeof names / sizeof names[0], &eb) != 0) return;
  size_t i = 0;
#define TB__NATS_SET_(name) tb__nats.name = (__typeof__(tb__nats.name))fns[i++];
  TB__NATS_SYMBOLS(TB__NATS_SET_)
#undef TB__NATS_SET_
}

int tb__nats_load(tb_errbuf_t *eb) {
  pthread_once(&once, load);
  return load_error[0] ? tb_errf(eb, TB_ENOTSUP, "%s", load_error) : 0;
}
