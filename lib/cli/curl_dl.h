/*
 * curl_dl.h — libcurl, loaded by the commands that talk to a node.
 *
 * libcurl links some thirty libraries (TLS, HTTP/2, LDAP, SSH, ...); linking it into
 * `tabbify` made every command — `tabbify wasm run` among them — pay for loading them at
 * start-up (15 ms and 9 MB instead of 2.4 ms and 2.6 MB). The API client reaches libcurl
 * through this table of typed pointers instead, filled on its first use (include/tb/dl.h).
 */
#ifndef TB_CURL_DL_H
#define TB_CURL_DL_H

/* curl's type-checking macros would expand `tb__curl.curl_easy_setopt(`; the pointers
 * below carry the functions' real types instead. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "tb/dl.h"
#include "tb/err.h"

#define TB__CURL_SYMBOLS(X, A) \
  X(A, curl_easy_cleanup) \
  X(A, curl_easy_getinfo) \
  X(A, curl_easy_init) \
  X(A, curl_easy_perform) \
  X(A, curl_easy_setopt) \
  X(A, curl_easy_strerror) \
  X(A, curl_global_cleanup) \
  X(A, curl_global_init) \
  X(A, curl_slist_append) \
  X(A, curl_slist_free_all) \

typedef struct tb__curl_api {
  TB__CURL_SYMBOLS(TB_DL_POINTER, )
} tb__curl_api_t;

/** The loaded functions; valid after tb__curl_load() returned 0. */
extern tb__curl_api_t tb__curl;

/** Loads libcurl once per process. Returns 0, or TB_ENOTSUP with a sentence in `eb`. */
int tb__curl_load(tb_errbuf_t *eb);

#endif /* TB_CURL_DL_H */
