/*
 * dl.c — optional shared libraries, resolved on first use (include/tb/dl.h).
 */
#include "tb/dl.h"

#include <dlfcn.h>

int tb_dl_resolve(const char *soname, const char *hint, const char *const *names, void **fns, size_t n,
                  tb_errbuf_t *eb) {
  void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) return tb_errf(eb, TB_ENOTSUP, "cannot load %s (install %s): %s", soname, hint, dlerror());
  for (size_t i = 0; i < n; i++) {
    fns[i] = dlsym(lib, names[i]);
    if (fns[i] == NULL) return tb_errf(eb, TB_ENOTSUP, "%s has no %s: install a newer %s", soname, names[i], hint);
  }
  return 0;
}
