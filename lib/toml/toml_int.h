/*
 * toml_int.h — what the three files of the TOML parser share, and nobody else sees.
 *
 * toml.c owns the tree (node layout, the per-document arena, table lookup with its hash
 * index, the public accessors); toml_lex.c turns bytes into keys, strings, numbers and
 * date-times and knows where every byte sits (line, column) and how to word an error;
 * toml_parse.c walks the grammar and applies TOML's table-definition rules. Nothing here
 * is part of include/tb/toml.h: consumers only ever see opaque nodes.
 */
#ifndef TB_TOML_INT_H
#define TB_TOML_INT_H

#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/buf.h"
#include "tb/toml.h"

/* ---- arena ------------------------------------------------------------------------ */

/*
 * Every node, key, string and vector of a document lives in one arena: a list of chunks
 * that are only ever freed together. Vectors that grow leave their old copy behind; since
 * they double, the waste is bounded by the final size.
 */
typedef struct tb__toml_chunk tb__toml_chunk_t;

typedef struct tb__toml_arena {
  tb__toml_chunk_t *head; /* the chunk allocations bump from; older ones follow */
  size_t next_size;       /* size of the next regular chunk */
} tb__toml_arena_t;

/** n bytes aligned for any node type, or NULL when the allocator fails. */
void *tb__toml_alloc(tb__toml_arena_t *a, size_t n);
/** Grows a block from old_n to new_n bytes, in place when it was the last allocation. */
void *tb__toml_grow(tb__toml_arena_t *a, void *old, size_t old_n, size_t new_n);
/** Frees every chunk; the arena is empty afterwards. */
void tb__toml_arena_free(tb__toml_arena_t *a);

/* ---- tree ------------------------------------------------------------------------- */

/* Node flags. They record how a table or array came to exist, which is what TOML's
 * rules about defining a table twice depend on. */
enum {
  TB__TOML_IMPLICIT = 1 << 0, /* table created as an intermediate of a [x.y] header */
  TB__TOML_DOTTED = 1 << 1,   /* table created by a dotted key (x.y = 1) */
  TB__TOML_SEALED = 1 << 2,   /* inline table or array literal: nothing may extend it */
  TB__TOML_AOT = 1 << 3,      /* array created by [[x]] headers */
};

typedef struct tb__toml_entry {
  const char *key; /* NUL-terminated copy in the arena */
  size_t key_len;
  tb_toml_pos_t key_pos;
  tb_toml_value_t *value;
} tb__toml_entry_t;

/* Open-addressing index of a large table; slot[i] holds an entry index + 1, 0 = empty. */
typedef struct tb__toml_index {
  uint64_t k0, k1; /* SipHash key, fixed when the index is first built */
  uint32_t mask;   /* slot count - 1; slot count is a power of two */
  uint32_t slot[];
} tb__toml_index_t;

/* Tables switch from a linear scan to the hash index above this many entries. */
#define TB__TOML_INDEX_MIN 16

struct tb_toml_value {
  uint8_t type;   /* tb_toml_type_t */
  uint8_t flags;  /* TB__TOML_* */
  uint16_t depth; /* the root table is 0; bounded by TB_TOML_MAX_DEPTH */
  tb_toml_pos_t pos;
  union {
    struct {
      tb__toml_entry_t *ent;
      size_t len, cap;
      tb__toml_index_t *idx; /* NULL until len exceeds TB__TOML_INDEX_MIN */
    } tab;
    struct {
      tb_toml_value_t **items;
      size_t len, cap;
    } arr;
    struct {
      const char *ptr; /* NUL-terminated */
      size_t len;
    } str;
    int64_t i;
    double f;
    bool b;
    tb_toml_datetime_t dt;
  } u;
};

/* The document owns the arena that holds it: tb_toml_free releases the chunks only. */
struct tb_toml_doc {
  tb__toml_arena_t arena;
  tb_toml_value_t *root;
};

/** The entry for key[0..len) in table t, or NULL. */
tb__toml_entry_t *tb__toml_find(const tb_toml_value_t *t, const char *key, size_t len);
/** Appends an entry (the caller has checked that the key is new). TB_ENOMEM. */
int tb__toml_add(tb__toml_arena_t *a, tb_toml_value_t *t, const char *key, size_t len,
                 tb_toml_pos_t key_pos, tb_toml_value_t *v);
/** Appends v to array arr. TB_ENOMEM. */
int tb__toml_push(tb__toml_arena_t *a, tb_toml_value_t *arr, tb_toml_value_t *v);

/* ---- parser state ----------------------------------------------------------------- */

/* One part of a dotted key as read from the source. */
typedef struct tb__toml_part {
  const char *s; /* decoded, NUL-terminated, in the arena */
  size_t len;
  size_t off; /* source offset of the part's first byte */
  tb_toml_pos_t pos;
} tb__toml_part_t;

/* A dotted key may have at most this many parts: one per table level and the last key.
 * The depth check on tables is the real limit; this one only bounds p->parts. */
#define TB__TOML_MAX_PARTS (TB_TOML_MAX_DEPTH + 1)

typedef struct tb__toml_parser {
  const uint8_t *src;
  size_t len;
  size_t off;   /* the next byte to read */
  size_t start; /* first byte after a BOM; columns count from here on line 1 */
  tb__toml_arena_t *arena;
  tb_toml_value_t *root;
  tb_toml_value_t *cur; /* table the current [header] selected */
  tb_buf_t scratch;     /* decoded strings and number text before they reach the arena */
  locale_t c_locale;    /* for strtod_l, made on first float */

  /* Position cursor: line and column of byte cur_off. Positions are asked for in
   * increasing order while parsing, so advancing it costs O(input) in total. */
  size_t cur_off;
  uint32_t cur_line, cur_col;

  tb_toml_error_t *err; /* may be NULL */
  bool failed;          /* an error has been recorded; the first one wins */

  tb__toml_part_t parts[TB__TOML_MAX_PARTS];
  size_t nparts;
} tb__toml_parser_t;

/* ---- toml_lex.c ------------------------------------------------------------------- */

/** Line and column of source offset off (off <= len). */
tb_toml_pos_t tb__toml_pos(tb__toml_parser_t *p, size_t off);
/** Records a parse error at offset off and returns TB_EPARSE. */
int tb__toml_fail(tb__toml_parser_t *p, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Records an allocation failure and returns TB_ENOMEM. */
int tb__toml_nomem(tb__toml_parser_t *p);
/** Writes a short description of the byte at off ("'x'", "newline", "end of input"). */
const char *tb__toml_describe(const tb__toml_parser_t *p, size_t off, char *buf, size_t n);
/** Writes parts[0..n) as a dotted key for messages, escaped and shortened. */
const char *tb__toml_keystr(const tb__toml_part_t *parts, size_t n, char *buf, size_t size);

/** Rejects input that is not UTF-8 (or encodes surrogates, overlongs, > U+10FFFF). */
int tb__toml_check_utf8(tb__toml_parser_t *p);
/** Skips spaces and tabs. */
void tb__toml_skip_ws(tb__toml_parser_t *p);
/** At '#': skips the comment up to (not including) the newline, checking its characters. */
int tb__toml_comment(tb__toml_parser_t *p);
/** Consumes LF or CRLF: 1 if one was there, 0 if not, TB_EPARSE for a lone CR. */
int tb__toml_newline(tb__toml_parser_t *p);
/** Skips whitespace, comments and newlines (inside arrays). */
int tb__toml_skip_wcn(tb__toml_parser_t *p);

/** True for A-Z a-z 0-9 - _ (the bare-key characters). */
static inline bool tb__toml_is_bare(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_';
}
/** The byte at off + k, or -1 past the end. */
static inline int tb__toml_peek(const tb__toml_parser_t *p, size_t k) {
  return p->off + k < p->len ? p->src[p->off + k] : -1;
}

/** Reads one key part (bare, "basic" or 'literal') into *part. */
int tb__toml_key_part(tb__toml_parser_t *p, tb__toml_part_t *part);
/** Reads a string value of any of the four kinds into v. */
int tb__toml_string(tb__toml_parser_t *p, tb_toml_value_t *v);
/** Reads a boolean, number or date-time into v. */
int tb__toml_scalar(tb__toml_parser_t *p, tb_toml_value_t *v);

#endif /* TB_TOML_INT_H */
