/*
 * buf.c — slices and bounded growable buffers (include/tb/buf.h).
 *
 * Growth doubles the capacity, clamped to max + 1 (the trailing NUL), so the number of
 * reallocations stays logarithmic and the limit is exact.
 */
#include "tb/buf.h"

#include <stdio.h>
#include <string.h>

#include "tb/alloc.h"
#include "tb/err.h"

tb_slice_t tb_slice_cstr(const char *s) { return tb_slice(s, strlen(s)); }

bool tb_slice_eq(tb_slice_t a, tb_slice_t b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool tb_slice_eq_cstr(tb_slice_t a, const char *s) { return tb_slice_eq(a, tb_slice_cstr(s)); }

bool tb_slice_starts_with(tb_slice_t a, tb_slice_t prefix) {
  return a.len >= prefix.len && (prefix.len == 0 || memcmp(a.ptr, prefix.ptr, prefix.len) == 0);
}

void tb_buf_init(tb_buf_t *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void tb_buf_deinit(tb_buf_t *b) {
  tb_free(b->data);
  tb_buf_init(b, b->max);
}

void tb_buf_reset(tb_buf_t *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

int tb_buf_reserve(tb_buf_t *b, size_t extra) {
  if (extra > b->max || b->len > b->max - extra) return TB_ETOOBIG;
  size_t need = b->len + extra + 1; /* + NUL */
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  if (cap > b->max + 1) cap = b->max + 1;
  uint8_t *p = tb_realloc(b->data, cap);
  if (p == NULL) return TB_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int tb_buf_append(tb_buf_t *b, const void *p, size_t n) {
  int rc = tb_buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int tb_buf_puts(tb_buf_t *b, const char *s) { return tb_buf_append(b, s, strlen(s)); }

int tb_buf_putc(tb_buf_t *b, int c) {
  uint8_t byte = (uint8_t)c;
  return tb_buf_append(b, &byte, 1);
}

int tb_buf_vprintf(tb_buf_t *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return TB_EINVAL;
  int rc = tb_buf_reserve(b, (size_t)n);
  if (rc) return rc;
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int tb_buf_printf(tb_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = tb_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

const char *tb_buf_cstr(const tb_buf_t *b) { return b->data ? (const char *)b->data : ""; }

char *tb_buf_steal(tb_buf_t *b, size_t *len) {
  char *s = b->data ? (char *)b->data : tb_strndup("", 0);
  if (s == NULL) return NULL;
  if (len) *len = b->len;
  tb_buf_init(b, b->max);
  return s;
}
