/*
 * dl.h — loading an optional shared library on first use.
 *
 * Some dependencies are needed by only a few commands of a program, yet linking them
 * makes every start of that program pay for loading them and their own dependencies
 * (libnats brings OpenSSL; libcurl brings thirty libraries). Components that own such a
 * dependency call it through a table of typed function pointers that tb_dl_resolve
 * fills, so only the code paths that use the library load it.
 */
#ifndef TB_DL_H
#define TB_DL_H

#include <pthread.h>
#include <stddef.h>

#include "tb/err.h"

/**
 * Loads `soname` (once per process; the library stays loaded) and stores the address of
 * each of the `n` symbols in `names` in fns[i]. Returns 0, or TB_ENOTSUP with a sentence
 * in `eb` naming the library or the missing symbol and the package to install (`hint`).
 */
int tb_dl_resolve(const char *soname, const char *hint, const char *const *names, void **fns, size_t n,
                  tb_errbuf_t *eb);

/*
 * A component declares its table from an X-macro list of the functions it calls, written
 * as SYMBOLS(X, A) expanding to X(A, name) for each name, after including the library's
 * header (so __typeof__ gives each pointer its function's exact type):
 *
 *   #define FOO_SYMBOLS(X, A) X(A, foo_open) X(A, foo_close)
 *   typedef struct { FOO_SYMBOLS(TB_DL_POINTER, ) } foo_api_t;
 *   foo_api_t foo_api;
 *   TB_DL_LOADER(foo_load, foo_api, FOO_SYMBOLS, "libfoo.so.1", "libfoo1")
 *
 * and calls foo_load(eb) before the first foo_api.foo_open(...).
 */
#define TB_DL_POINTER(api, name) __typeof__(name) *name;
#define TB_DL_NAME_(api, name) #name,
#define TB_DL_SET_(api, name) api.name = (__typeof__(api.name))fns[i_++];

/* Defines `int load_fn(tb_errbuf_t *eb)`: loads the library once per process (thread-safe)
 * and fills `api`; returns 0, or TB_ENOTSUP with the reason in `eb` every time it is called. */
#define TB_DL_LOADER(load_fn, api, SYMBOLS, soname, hint)                                         \
  static pthread_once_t load_fn##_once_ = PTHREAD_ONCE_INIT;                                      \
  static char load_fn##_error_[256];                                                              \
  static void load_fn##_run_(void) {                                                              \
    static const char *const names[] = {SYMBOLS(TB_DL_NAME_, api)};                               \
    void *fns[sizeof names / sizeof names[0]];                                                    \
    tb_errbuf_t eb_ = {load_fn##_error_, sizeof load_fn##_error_};                                \
    if (tb_dl_resolve(soname, hint, names, fns, sizeof names / sizeof names[0], &eb_) != 0) return; \
    size_t i_ = 0;                                                                                \
    SYMBOLS(TB_DL_SET_, api)                                                                      \
  }                                                                                               \
  int load_fn(tb_errbuf_t *eb) {                                                                  \
    pthread_once(&load_fn##_once_, load_fn##_run_);                                               \
    return load_fn##_error_[0] ? tb_errf(eb, TB_ENOTSUP, "%s", load_fn##_error_) : 0;             \
  }

#endif /* TB_DL_H */
