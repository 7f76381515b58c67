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

#include <stddef.h>

#include "tb/err.h"

/**
 * Loads `soname` (once per process; the library stays loaded) and stores the address of
 * each of the `n` symbols in `names` in fns[i]. Returns 0, or TB_ENOTSUP with a sentence
 * in `eb` naming the library or the missing symbol and the package to install (`hint`).
 */
int tb_dl_resolve(const char *soname, const char *hint, const char *const *names, void **fns, size_t n,
                  tb_errbuf_t *eb);

#endif /* TB_DL_H */
