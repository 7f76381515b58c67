/*
 * json.c — parse, dump and typed field access over jansson (include/tb/json.h).
 */
#include "tb/json.h"

#include <string.h>

int tb_json_parse(const char *text, size_t len, json_t **out, tb_errbuf_t *eb) {
  json_error_t je;
  *out = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (*out == NULL) {
    return tb_errf(eb, json_error_code(&je) == json_error_out_of_memory ? TB_ENOMEM : TB_EPARSE,
                   "line %d, column %d: %s", je.line, je.column, je.text);
  }
  return 0;
}

typedef struct dump_ctx {
  tb_buf_t *out;
  int rc; /* the buffer's own error, which jansson cannot carry */
} dump_ctx_t;

static int dump_cb(const char *buffer, size_t size, void *data) {
  dump_ctx_t *ctx = data;
  ctx->rc = tb_buf_append(ctx->out, buffer, size);
  return ctx->rc == 0 ? 0 : -1;
}

int tb_json_dump(const json_t *v, int flags, tb_buf_t *out) {
  size_t jflags = JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | (flags & TB_JSON_PRETTY ? JSON_INDENT(2) : JSON_COMPACT);
  size_t before = out->len;
  dump_ctx_t ctx = {out, 0};
  if (json_dump_callback(v, dump_cb, &ctx, jflags) != 0) {
    out->len = before; /* leave the buffer as it was */
    if (out->data) out->data[before] = '\0';
    return ctx.rc ? ctx.rc : TB_ENOMEM;
  }
  return 0;
}

/* Looks `key` up and checks its type; shared by the typed getters. */
static int field(const json_t *obj, const char *key, json_type type, const char *what, json_t **v,
                 tb_errbuf_t *eb) {
  if (!json_is_object(obj)) return tb_errf(eb, TB_EINVAL, "expected an object around field \"%s\"", key);
  *v = json_object_get(obj, key);
  if (*v == NULL) return TB_ENOENT;
  bool ok = json_typeof(*v) == type || (type == JSON_TRUE && json_is_boolean(*v));
  if (!ok) return tb_errf(eb, TB_EINVAL, "field \"%s\" must be %s", key, what);
  return 0;
}

int tb_json_get_str(const json_t *obj, const char *key, const char **out, tb_errbuf_t *eb) {
  json_t *v = NULL;
  int rc = field(obj, key, JSON_STRING, "a string", &v, eb);
  if (rc == 0) *out = json_string_value(v);
  return rc;
}

int tb_json_get_int(const json_t *obj, const char *key, int64_t *out, tb_errbuf_t *eb) {
  json_t *v = NULL;
  int rc = field(obj, key, JSON_INTEGER, "an integer", &v, eb);
  if (rc == 0) *out = (int64_t)json_integer_value(v);
  return rc;
}

int tb_json_get_bool(const json_t *obj, const char *key, bool *out, tb_errbuf_t *eb) {
  json_t *v = NULL;
  int rc = field(obj, key, JSON_TRUE, "true or false", &v, eb);
  if (rc == 0) *out = json_is_true(v);
  return rc;
}

int tb_json_get_obj(const json_t *obj, const char *key, json_t **out, tb_errbuf_t *eb) {
  json_t *v = NULL;
  int rc = field(obj, key, JSON_OBJECT, "an object", &v, eb);
  if (rc == 0) *out = v;
  return rc;
}

int tb_json_get_array(const json_t *obj, const char *key, json_t **out, tb_errbuf_t *eb) {
  json_t *v = NULL;
  int rc = field(obj, key, JSON_ARRAY, "an array", &v, eb);
  if (rc == 0) *out = v;
  return rc;
}
