/*
 * log.c — logfmt records (include/tb/log.h).
 *
 * A record is formatted into a stack buffer and written with a single write(2); a
 * record longer than the buffer is truncated with "…" rather than split, because a
 * half-written line would break every parser downstream.
 */
#include "tb/log.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tb/clock.h"

static _Atomic int current_level = TB_LOG_INFO;
static _Atomic int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

tb_log_level_t tb_log_level(void) { return (tb_log_level_t)atomic_load_explicit(&current_level, memory_order_relaxed); }

void tb_log_set_level(tb_log_level_t level) { atomic_store(&current_level, (int)level); }

int tb_log_level_parse(const char *name, tb_log_level_t *out) {
  for (int i = 0; i <= TB_LOG_OFF; i++) {
    if (strcmp(name, level_names[i]) == 0) {
      *out = (tb_log_level_t)i;
      return 0;
    }
  }
  return TB_EINVAL;
}

void tb_log_set_fd(int fd) { atomic_store(&log_fd, fd); }

/* A small writer that never overflows and remembers that it had to truncate. */
typedef struct out {
  char *p;
  size_t len, cap; /* cap excludes the reserved "…\n\0" tail */
  int truncated;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
  if (o->len + n > o->cap) {
    n = o->cap - o->len;
    o->truncated = 1;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

static void puts_(out_t *o, const char *s) { put(o, s, strlen(s)); }

/* logfmt needs quotes around empty values and values with spaces, quotes, '=' or controls. */
static int needs_quotes(const char *s) {
  if (*s == '\0') return 1;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return 1;
  }
  return 0;
}

static void put_value(out_t *o, const char *s, int force_quotes) {
  if (s == NULL) s = "(null)";
  if (!force_quotes && !needs_quotes(s)) {
    puts_(o, s);
    return;
  }
  put(o, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(o, esc, 2);
    } else if (c == '\n') {
      put(o, "\\n", 2);
    } else if (c == '\t') {
      put(o, "\\t", 2);
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(esc, sizeof esc, "\\x%02x", c);
      puts_(o, esc);
    } else {
      put(o, (const char *)&c, 1);
    }
  }
  put(o, "\"", 1);
}

size_t tb_log_format(char *out, size_t size, const char *ts, tb_log_level_t level,
                     const char *component, const char *msg, const tb_kv_t *fields) {
  static const char tail[] = "\xe2\x80\xa6"; /* "…" */
  if (size < sizeof tail + 2) return 0;
  out_t o = {out, 0, size - sizeof tail - 1, 0};
  char num[48];
  puts_(&o, "ts=");
  puts_(&o, ts);
  puts_(&o, " level=");
  puts_(&o, level_names[level < TB_LOG_OFF ? level : TB_LOG_ERROR]);
  puts_(&o, " comp=");
  put_value(&o, component, 0);
  puts_(&o, " msg=");
  put_value(&o, msg, 1);
  for (const tb_kv_t *f = fields; f && f->type != TB_KV_END_; f++) {
    put(&o, " ", 1);
    puts_(&o, f->key);
    put(&o, "=", 1);
    switch (f->type) {
    case TB_KV_STR_:
      put_value(&o, f->v.s, 0);
      break;
    case TB_KV_INT_:
      snprintf(num, sizeof num, "%" PRId64, f->v.i);
      puts_(&o, num);
      break;
    case TB_KV_UINT_:
      snprintf(num, sizeof num, "%" PRIu64, f->v.u);
      puts_(&o, num);
      break;
    case TB_KV_F64_:
      snprintf(num, sizeof num, "%.17g", f->v.d);
      puts_(&o, num);
      break;
    case TB_KV_BOOL_:
      puts_(&o, f->v.b ? "true" : "false");
      break;
    case TB_KV_END_:
      break;
    }
  }
  if (o.truncated) {
    memcpy(out + o.len, tail, sizeof tail - 1);
    o.len += sizeof tail - 1;
  }
  out[o.len++] = '\n';
  out[o.len] = '\0';
  return o.len;
}

void tb_log_emit(tb_log_level_t level, const char *component, const char *msg, const tb_kv_t *fields) {
  if (level < tb_log_level()) return;
  char ts[TB_RFC3339_MAX];
  char line[4096];
  tb_clock_format_rfc3339(tb_clock_wall_ns(), ts);
  size_t n = tb_log_format(line, sizeof line, ts, level, component, msg, fields);
  ssize_t w = write(atomic_load(&log_fd), line, n);
  (void)w; /* nowhere to report a failed log write */
}
