/*
 * curl_dl.c — resolves libcurl at run time (see curl_dl.h for why).
 */
#include "curl_dl.h"

#include <pthread.h>

#include "tb/dl.h"

tb__curl_api_t tb__curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256];

static void load(void) {
  static const char *const names[] = {
#define TB__CURL_NAME_(name) #name,
      TB__CURL_SYMBOLS(TB__CURL_NAME_)
#undef TB__CURL_NAME_
  };
  void *fns[sizeof names / sizeof names[0]];
  tb_errbuf_t eb = {load_error, sizeof load_error};
  if (tb_dl_resolve(TB_CURL_SONAME, "libcurl4", names, fns, sizeof names / sizeof names[0], &eb) != 0) return;
  size_t i = 0;
#define TB__CURL_SET_(name) tb__curl.name = (__typeof__(tb__curl.name))fns[i++];
  TB__CURL_SYMBOLS(TB__CURL_SET_)
#undef TB__CURL_SET_
}

int tb__curl_load(tb_errbuf_t *eb) {
  pthread_once(&once, load);
  return load_error[0] ? tb_errf(eb, TB_ENOTSUP, "%s", load_error) : 0;
}
