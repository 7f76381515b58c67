/*
 * curl_dl.c — resolves libcurl at run time (see curl_dl.h for why).
 */
#include "curl_dl.h"

tb__curl_api_t tb__curl;

TB_DL_LOADER(tb__curl_load, tb__curl, TB__CURL_SYMBOLS, TB_CURL_SONAME, "libcurl4")
