/*
 * log.h — structured logging: one line per record, logfmt style.
 *
 *   ts=2026-11-22T00:44:09.123Z level=info comp=node msg="listening" addr=127.0.0.1 port=8090
 *
 * Fields are typed key/value pairs, so values are quoted and escaped by the logger, never
 * by the caller, and the line stays machine-readable whatever a value contains:
 *
 *   tb_log_info("node", "listening", TB_KV_STR("addr", addr), TB_KV_INT("port", port));
 *
 * Records below the current level cost one comparison. Output goes to stderr by default;
 * tb_log_set_fd() redirects it. A record is written with one write(2), so lines from
 * several threads or processes sharing a file do not interleave.
 */
#ifndef TB_LOG_H
#define TB_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "tb/err.h"

typedef enum tb_log_level {
  TB_LOG_DEBUG = 0,
  TB_LOG_INFO = 1,
  TB_LOG_WARN = 2,
  TB_LOG_ERROR = 3,
  TB_LOG_OFF = 4,
} tb_log_level_t;

typedef enum tb_kv_type { TB_KV_END_ = 0, TB_KV_STR_, TB_KV_INT_, TB_KV_UINT_, TB_KV_F64_, TB_KV_BOOL_ } tb_kv_type_t;

typedef struct tb_kv {
  tb_kv_type_t type;
  const char *key;
  union {
    const char *s;
    int64_t i;
    uint64_t u;
    double d;
    bool b;
  } v;
} tb_kv_t;

#define TB_KV_STR(k, val) ((tb_kv_t){.type = TB_KV_STR_, .key = (k), .v.s = (val)})
#define TB_KV_INT(k, val) ((tb_kv_t){.type = TB_KV_INT_, .key = (k), .v.i = (int64_t)(val)})
#define TB_KV_UINT(k, val) ((tb_kv_t){.type = TB_KV_UINT_, .key = (k), .v.u = (uint64_t)(val)})
#define TB_KV_F64(k, val) ((tb_kv_t){.type = TB_KV_F64_, .key = (k), .v.d = (double)(val)})
#define TB_KV_BOOL(k, val) ((tb_kv_t){.type = TB_KV_BOOL_, .key = (k), .v.b = (val)})
/** An error code as two fields: err=TB_ENOENT reason="no such file or directory". */
#define TB_KV_ERR(code) TB_KV_STR("err", tb_err_name(code)), TB_KV_STR("reason", tb_strerror(code))

/** Emits one record; `fields` ends with an element whose type is TB_KV_END_. */
void tb_log_emit(tb_log_level_t level, const char *component, const char *msg, const tb_kv_t *fields);

#define tb_log(level, comp, msg, ...)                                                    \
  do {                                                                                   \
    if ((level) >= tb_log_level())                                                       \
      tb_log_emit((level), (comp), (msg), (const tb_kv_t[]){__VA_ARGS__ __VA_OPT__(, ){0}}); \
  } while (0)
#define tb_log_debug(comp, msg, ...) tb_log(TB_LOG_DEBUG, comp, msg __VA_OPT__(, ) __VA_ARGS__)
#define tb_log_info(comp, msg, ...) tb_log(TB_LOG_INFO, comp, msg __VA_OPT__(, ) __VA_ARGS__)
#define tb_log_warn(comp, msg, ...) tb_log(TB_LOG_WARN, comp, msg __VA_OPT__(, ) __VA_ARGS__)
#define tb_log_error(comp, msg, ...) tb_log(TB_LOG_ERROR, comp, msg __VA_OPT__(, ) __VA_ARGS__)

/** The current threshold; records below it are dropped. Default TB_LOG_INFO. */
tb_log_level_t tb_log_level(void);
void tb_log_set_level(tb_log_level_t level);
/** Parses "debug", "info", "warn", "error", "off"; TB_EINVAL otherwise. */
int tb_log_level_parse(const char *name, tb_log_level_t *out);
/** Sends records to `fd` (not owned; the caller keeps it open). Default 2. */
void tb_log_set_fd(int fd);
/**
 * Formats one record into `out` (at most `size` bytes, NUL-terminated, ending in '\n'),
 * with `ts` as the timestamp text. Returns the length written. Exposed for tests.
 */
size_t tb_log_format(char *out, size_t size, const char *ts, tb_log_level_t level,
                     const char *component, const char *msg, const tb_kv_t *fields);

#endif /* TB_LOG_H */
