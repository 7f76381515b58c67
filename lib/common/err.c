/*
 * err.c — names and sentences for the codes in include/tb/err.h.
 *
 * Both lookups are switches generated from TB_ERR_MAP, so a code added to the table
 * is named everywhere at once.
 */
#include "tb/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *tb_strerror(int err) {
  switch (err) {
#define TB_ERR_MSG_(name, value, msg) \
  case TB_##name:                     \
    return msg;
    TB_ERR_MAP(TB_ERR_MSG_)
#undef TB_ERR_MSG_
  case 0:
    return "success";
  default:
    return "unknown error";
  }
}

const char *tb_err_name(int err) {
  switch (err) {
#define TB_ERR_NAME_(name, value, msg) \
  case TB_##name:                      \
    return "TB_" #name;
    TB_ERR_MAP(TB_ERR_NAME_)
#undef TB_ERR_NAME_
  case 0:
    return "TB_OK";
  default:
    return "TB_EUNKNOWN";
  }
}

int tb_errf(tb_errbuf_t *eb, int err, const char *fmt, ...) {
  if (eb != NULL && eb->buf != NULL && eb->size > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(eb->buf, eb->size, fmt, ap);
    va_end(ap);
  }
  return err;
}
