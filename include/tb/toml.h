/*
 * toml.h — a TOML 1.0 parser that keeps where every key and value came from.
 *
 * tb_toml_parse() reads a whole document into an immutable tree owned by one
 * tb_toml_doc_t; every node is freed at once by tb_toml_free(). Each value and each
 * table key carries its 1-based line and column (columns count Unicode characters), so
 * consumers such as the manifest can report "tabbify.toml:7:12: ..." for a value that is
 * well-formed TOML but wrong for them.
 *
 * Conformance: all TOML 1.0.0 cases of the toml-test suite (tests/toml/). Hostile
 * input is bounded: nesting deeper than TB_TOML_MAX_DEPTH is rejected, and allocation
 * failure is reported as TB_ENOMEM, never an abort.
 */
#ifndef TB_TOML_H
#define TB_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Arrays, inline tables and tables (from headers or dotted keys) nested deeper than this
 * are rejected as malformed, so a tree is at most TB_TOML_MAX_DEPTH + 1 levels deep (the
 * root table is level 0) and recursive walks over it are safe.
 */
#define TB_TOML_MAX_DEPTH 128

typedef enum tb_toml_type {
  TB_TOML_TABLE = 1,
  TB_TOML_ARRAY,
  TB_TOML_STRING,
  TB_TOML_INTEGER,
  TB_TOML_FLOAT,
  TB_TOML_BOOL,
  TB_TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
  TB_TOML_LOCAL_DATETIME, /* 1979-05-27T07:32:00 */
  TB_TOML_LOCAL_DATE,     /* 1979-05-27 */
  TB_TOML_LOCAL_TIME,     /* 07:32:00 */
} tb_toml_type_t;

typedef struct tb_toml_pos {
  uint32_t line; /* 1-based */
  uint32_t col;  /* 1-based, in characters */
} tb_toml_pos_t;

/* The parts of a date and/or time; which parts are meaningful depends on the type. */
typedef struct tb_toml_datetime {
  int year, month, day;          /* dates */
  int hour, minute, second;      /* times */
  uint32_t nanosecond;           /* fractional seconds, truncated to ns */
  int offset_minutes;            /* TB_TOML_DATETIME only; "Z" is 0 */
} tb_toml_datetime_t;

typedef struct tb_toml_doc tb_toml_doc_t;
typedef struct tb_toml_value tb_toml_value_t;

typedef struct tb_toml_error {
  uint32_t line, col; /* where the problem is, 1-based */
  char msg[256];      /* a sentence without position, e.g. "expected '=' after key" */
} tb_toml_error_t;

/**
 * Parses `len` bytes at `src` (need not be NUL-terminated; never read past `len`).
 * `src` is only borrowed for the call: the document holds copies of every key and string.
 * On success stores a new document in *out (free with tb_toml_free) and returns 0.
 * On malformed input returns TB_EPARSE and fills *err (if not NULL) with position and
 * sentence; on allocation failure TB_ENOMEM (and *err says "out of memory"); TB_EINVAL
 * if `out` is NULL or `src` is NULL with len > 0. *out is NULL on any failure, and
 * nothing is left allocated. Safe to call from several threads at once.
 */
int tb_toml_parse(const char *src, size_t len, tb_toml_doc_t **out, tb_toml_error_t *err);

/** Frees the document and every value in it. NULL is fine. */
void tb_toml_free(tb_toml_doc_t *doc);

/** The root table; borrowed, valid until tb_toml_free. */
const tb_toml_value_t *tb_toml_root(const tb_toml_doc_t *doc);

/** The value's type; 0 (no type) for NULL. */
tb_toml_type_t tb_toml_type(const tb_toml_value_t *v);
/**
 * Where the value starts in the source; {0, 0} for NULL. For a table: the '[' of the
 * header that defined it, the first dotted key part that created it, or its '{'; for the
 * root table 1:1. For an array of tables: the first [[header]]; each element: its own.
 */
tb_toml_pos_t tb_toml_pos(const tb_toml_value_t *v);
/**
 * A name for a type, for messages: "table", "array", "string", "integer", "float",
 * "boolean", "offset date-time", "local date-time", "local date", "local time";
 * "unknown" for anything else. Static storage.
 */
const char *tb_toml_type_name(tb_toml_type_t t);

/** Number of entries of a table or elements of an array; 0 for other types. */
size_t tb_toml_len(const tb_toml_value_t *v);
/** Element i of an array, or NULL. */
const tb_toml_value_t *tb_toml_at(const tb_toml_value_t *array, size_t i);
/**
 * Entry i of a table, in document order: returns its key (NUL-terminated; a key may
 * contain NUL through a \u0000 escape, *key_len tells the real length) and stores the
 * value in *value and the key's position in *key_pos (both optional). NULL past the end.
 */
const char *tb_toml_entry(const tb_toml_value_t *table, size_t i, size_t *key_len,
                          const tb_toml_value_t **value, tb_toml_pos_t *key_pos);
/** The value under `key` in a table, or NULL (also when `table` is not a table). */
const tb_toml_value_t *tb_toml_get(const tb_toml_value_t *table, const char *key);
/** Like tb_toml_get for a key of `len` bytes, which may contain NUL. */
const tb_toml_value_t *tb_toml_getn(const tb_toml_value_t *table, const char *key, size_t len);

/*
 * Scalar accessors. They never fail: given NULL or a value of another type they return
 * NULL / 0 / 0.0 / false (and *len = 0), so check tb_toml_type first when it matters.
 * No conversion is done: tb_toml_float of an integer is 0.0.
 */

/** A string's bytes, NUL-terminated, and its length (strings may contain NUL). */
const char *tb_toml_str(const tb_toml_value_t *v, size_t *len);
int64_t tb_toml_int(const tb_toml_value_t *v);
double tb_toml_float(const tb_toml_value_t *v);
bool tb_toml_bool(const tb_toml_value_t *v);
/** For the four date/time types; NULL otherwise. Borrowed, valid until tb_toml_free. */
const tb_toml_datetime_t *tb_toml_datetime(const tb_toml_value_t *v);

#endif /* TB_TOML_H */
