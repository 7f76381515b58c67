/*
 * nats_dl.c — resolves libnats at run time (see nats_dl.h for why).
 */
#include "nats_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

tb__nats_api_t tb__nats;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256];

static void load(void) {
  void *lib = dlopen(TB_NATS_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    snprintf(load_error, sizeof load_error, "cannot load %s (install libnats): %s", TB_NATS_SONAME, dlerror());
    return;
  }
#define TB__NATS_LOAD_(name)                                                                      \
  if (load_error[0] == '\0' && (tb__nats.name = (__typeof__(tb__nats.name))dlsym(lib, #name)) == NULL) \
    snprintf(load_error, sizeof load_error, "%s has no %s: a libnats older than 3.4?", TB_NATS_SONAME, #name);
  TB__NATS_SYMBOLS(TB__NATS_LOAD_)
#undef TB__NATS_LOAD_
  /* The library stays loaded for the life of the process, as a linked one would. */
}

int tb__nats_load(tb_errbuf_t *eb) {
  pthread_once(&once, load);
  return load_error[0] ? tb_errf(eb, TB_ENOTSUP, "%s", load_error) : 0;
}
