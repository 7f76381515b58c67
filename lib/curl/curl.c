/*
 * curl.c — resolves libcurl at run time (include/tb/curl.h says why).
 */
#include "tb/curl.h"

tb_curl_api_t tb_curl;

TB_DL_LOADER(tb_curl_load, tb_curl, TB_CURL_SYMBOLS, TB_CURL_SONAME, "libcurl4")
