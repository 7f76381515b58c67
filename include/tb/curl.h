/*
 * curl.h — libcurl, loaded on first use by the components that speak HTTP through it:
 * the CLI's API client (lib/cli) and the Docker Engine API client (lib/docker).
 *
 * libcurl links some thirty libraries (TLS, HTTP/2, LDAP, SSH, ...). Linking it made every
 * program that merely contains such a client pay for loading them at start-up: `tabbify
 * wasm run` 15 ms and 9 MB instead of 2.4 ms and 2.6 MB, and every tabbify-runner — whose
 * start-up is part of a scaled-to-zero app's first request — 7.7 ms instead of ~1 ms. So
 * callers reach libcurl through this table of typed pointers, filled on the first
 * tb_curl_load() (include/tb/dl.h); a wasm-http runner never loads it.
 */
#ifndef TB_CURL_H
#define TB_CURL_H

/* curl's type-checking macros would expand `tb_curl.curl_easy_setopt(`; the pointers
 * below carry the functions' real types instead. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "tb/dl.h"
#include "tb/err.h"

#define TB_CURL_SYMBOLS(X, A) \
  X(A, curl_easy_cleanup) \
  X(A, curl_easy_getinfo) \
  X(A, curl_easy_init) \
  X(A, curl_easy_perform) \
  X(A, curl_easy_reset) \
  X(A, curl_easy_setopt) \
  X(A, curl_easy_strerror) \
  X(A, curl_global_cleanup) \
  X(A, curl_global_init) \
  X(A, curl_slist_append) \
  X(A, curl_slist_free_all) \

typedef struct tb_curl_api {
  TB_CURL_SYMBOLS(TB_DL_POINTER, )
} tb_curl_api_t;

/** The loaded functions; valid after tb_curl_load() returned 0. */
extern tb_curl_api_t tb_curl;

/** Loads libcurl once per process (any thread). 0, or TB_ENOTSUP with a sentence in `eb`. */
int tb_curl_load(tb_errbuf_t *eb);

#endif /* TB_CURL_H */
