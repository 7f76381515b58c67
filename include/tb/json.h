/*
 * json.h — the few things every component needs on top of jansson.
 *
 * Values are jansson's json_t with its reference counting: functions that return a
 * new value say so and the caller json_decref()s it. What this adds is error reporting
 * in our convention (a TB_E code plus a sentence naming the field or the position),
 * typed field access for request bodies and stored payloads, and output into tb_buf_t.
 */
#ifndef TB_JSON_H
#define TB_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "tb/buf.h"
#include "tb/err.h"

/**
 * Parses `len` bytes of JSON text (one value; objects keep key order). On success
 * stores a new reference in *out. On failure returns TB_EPARSE and writes "line L,
 * column C: <reason>" into `eb`. Duplicate object keys are rejected.
 */
int tb_json_parse(const char *text, size_t len, json_t **out, tb_errbuf_t *eb);

/** Flags for tb_json_dump: compact by default; TB_JSON_PRETTY indents by two spaces. */
enum { TB_JSON_COMPACT = 0, TB_JSON_PRETTY = 1 };

/** Appends the serialisation of `v` (keys in insertion order) to `out`. */
int tb_json_dump(const json_t *v, int flags, tb_buf_t *out);

/*
 * Typed field access. Each returns 0 and stores the field, TB_ENOENT when the key is
 * absent (the output is untouched, so callers can pre-set defaults), or TB_EINVAL when
 * it has the wrong type, with "field \"name\" must be a string" in `eb`. Strings and
 * objects are borrowed from `obj`.
 */
int tb_json_get_str(const json_t *obj, const char *key, const char **out, tb_errbuf_t *eb);
int tb_json_get_int(const json_t *obj, const char *key, int64_t *out, tb_errbuf_t *eb);
int tb_json_get_bool(const json_t *obj, const char *key, bool *out, tb_errbuf_t *eb);
int tb_json_get_obj(const json_t *obj, const char *key, json_t **out, tb_errbuf_t *eb);
int tb_json_get_array(const json_t *obj, const char *key, json_t **out, tb_errbuf_t *eb);

#endif /* TB_JSON_H */
