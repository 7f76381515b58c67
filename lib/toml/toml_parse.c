/*
 * toml_parse.c — the grammar half of the TOML parser: tb_toml_parse() itself, key/value
 * lines, [table] and [[array]] headers, arrays and inline tables, and the rules about
 * which table may be defined or extended when.
 *
 * The parser is a recursive descent over the bytes that recurses only into array and
 * inline-table values, at most TB_TOML_MAX_DEPTH deep; headers and dotted keys are walked
 * with loops. How a table came to exist is kept in its flags (toml_int.h) because TOML's
 * redefinition rules depend on exactly that: a [header] may define a table that earlier
 * headers only implied, dotted keys may only extend tables that dotted keys created, and
 * inline tables and array literals can never be extended. Tokens come from toml_lex.c.
 */
#include <string.h>

#include "tb/err.h"
#include "toml_int.h"

static int parse_value(tb__toml_parser_t *p, uint16_t depth, tb_toml_value_t **out);

static tb_toml_value_t *new_node(tb__toml_parser_t *p, tb_toml_type_t type, size_t off,
                                 uint16_t depth) {
  tb_toml_value_t *v = tb__toml_alloc(p->arena, sizeof *v);
  if (v == NULL) return NULL;
  memset(v, 0, sizeof *v);
  v->type = (uint8_t)type;
  v->depth = depth;
  v->pos = tb__toml_pos(p, off);
  return v;
}

/* A new table under `parent` for key part `part`, checking how deep the tree gets. */
static int new_table(tb__toml_parser_t *p, tb_toml_value_t *parent, const tb__toml_part_t *part,
                     uint8_t flags, tb_toml_pos_t pos, tb_toml_value_t **out) {
  if (parent->depth >= TB_TOML_MAX_DEPTH)
    return tb__toml_fail(p, part->off, "tables nest deeper than %d levels", TB_TOML_MAX_DEPTH);
  tb_toml_value_t *t = tb__toml_alloc(p->arena, sizeof *t);
  if (t == NULL) return tb__toml_nomem(p);
  memset(t, 0, sizeof *t);
  t->type = TB_TOML_TABLE;
  t->flags = flags;
  t->depth = (uint16_t)(parent->depth + 1);
  t->pos = pos;
  if (tb__toml_add(p->arena, parent, part->s, part->len, part->pos, t) != 0)
    return tb__toml_nomem(p);
  *out = t;
  return 0;
}

/* Reads a (possibly dotted) key into p->parts and records each part's position. */
static int parse_key(tb__toml_parser_t *p) {
  p->nparts = 0;
  for (;;) {
    if (p->nparts == TB__TOML_MAX_PARTS)
      return tb__toml_fail(p, p->off, "key has too many parts: tables nest deeper than %d levels",
                           TB_TOML_MAX_DEPTH);
    int rc = tb__toml_key_part(p, &p->parts[p->nparts]);
    if (rc != 0) return rc;
    p->nparts++;
    tb__toml_skip_ws(p);
    if (tb__toml_peek(p, 0) != '.') break;
    p->off++;
    tb__toml_skip_ws(p);
  }
  /* Positions are taken only now, in source order, so the cursor only moves forward. */
  for (size_t i = 0; i < p->nparts; i++) p->parts[i].pos = tb__toml_pos(p, p->parts[i].off);
  return 0;
}

/* The sentence for a dotted key (parts[0..i]) that runs into an existing value v. */
static int dotted_conflict(tb__toml_parser_t *p, size_t i, const tb_toml_value_t *v) {
  char k[96];
  tb__toml_keystr(p->parts, i + 1, k, sizeof k);
  size_t off = p->parts[i].off;
  unsigned line = v->pos.line;
  if (v->type == TB_TOML_TABLE && (v->flags & TB__TOML_SEALED))
    return tb__toml_fail(p, off, "inline table \"%s\" (line %u) cannot be extended", k, line);
  if (v->type == TB_TOML_TABLE)
    return tb__toml_fail(p, off,
                         "table \"%s\" is defined by the header at line %u and cannot be "
                         "extended with dotted keys",
                         k, line);
  if (v->type == TB_TOML_ARRAY && (v->flags & TB__TOML_AOT))
    return tb__toml_fail(p, off,
                         "\"%s\" is an array of tables (line %u) and cannot be extended with "
                         "dotted keys",
                         k, line);
  return tb__toml_fail(p, off, "key \"%s\" is already defined at line %u as %s, not a table", k,
                       line, tb_toml_type_name((tb_toml_type_t)v->type));
}

/*
 * key = value into table t (the current [section] or an inline table being built).
 * Intermediate parts of a dotted key create tables flagged DOTTED and may only walk
 * through such tables (or ones that headers merely implied, which they then define):
 * that is how "dotted keys cannot extend a table defined elsewhere" is enforced without
 * remembering which section created what. A section's dotted tables can only be reached
 * from that section, since reaching them from another would need a second header for
 * the same table.
 */
static int parse_keyval(tb__toml_parser_t *p, tb_toml_value_t *t) {
  int rc = parse_key(p);
  if (rc != 0) return rc;
  tb__toml_skip_ws(p);
  if (tb__toml_peek(p, 0) != '=') {
    char k[96], what[48];
    return tb__toml_fail(p, p->off, "expected '=' after key \"%s\", found %s",
                         tb__toml_keystr(p->parts, p->nparts, k, sizeof k),
                         tb__toml_describe(p, p->off, what, sizeof what));
  }
  p->off++;
  tb__toml_skip_ws(p);
  size_t n = p->nparts;
  for (size_t i = 0; i + 1 < n; i++) {
    tb__toml_entry_t *e = tb__toml_find(t, p->parts[i].s, p->parts[i].len);
    if (e == NULL) {
      rc = new_table(p, t, &p->parts[i], TB__TOML_DOTTED, p->parts[i].pos, &t);
      if (rc != 0) return rc;
      continue;
    }
    tb_toml_value_t *v = e->value;
    if (v->type == TB_TOML_TABLE && (v->flags & TB__TOML_IMPLICIT)) {
      /* Headers only implied this table, so it is not defined yet (TOML 1.0: dotted
       * keys may not redefine tables "defined in [table] form"). From now on the dotted
       * keys define it, so a later [header] for it is a redefinition. */
      v->flags = (uint8_t)((v->flags & ~TB__TOML_IMPLICIT) | TB__TOML_DOTTED);
      v->pos = p->parts[i].pos;
    }
    if (v->type != TB_TOML_TABLE || !(v->flags & TB__TOML_DOTTED)) return dotted_conflict(p, i, v);
    t = v;
  }
  /* Inline-table values reuse p->parts, so keep the last part. */
  tb__toml_part_t last = p->parts[n - 1];
  tb__toml_entry_t *e = tb__toml_find(t, last.s, last.len);
  if (e != NULL) {
    char k[96];
    return tb__toml_fail(p, last.off, "key \"%s\" is already defined at line %u",
                         tb__toml_keystr(p->parts, n, k, sizeof k), e->value->pos.line);
  }
  tb_toml_value_t *v = NULL;
  rc = parse_value(p, (uint16_t)(t->depth + 1), &v);
  if (rc != 0) return rc;
  if (tb__toml_add(p->arena, t, last.s, last.len, last.pos, v) != 0) return tb__toml_nomem(p);
  return 0;
}

/* [a.b.c] or [[a.b.c]]: selects (creating as needed) the table later keys go into. */
static int parse_header(tb__toml_parser_t *p) {
  size_t hdr = p->off;
  bool aot = tb__toml_peek(p, 1) == '[';
  tb_toml_pos_t hpos = tb__toml_pos(p, hdr);
  p->off += aot ? 2 : 1;
  tb__toml_skip_ws(p);
  int rc = parse_key(p);
  if (rc != 0) return rc;
  tb__toml_skip_ws(p);
  if (tb__toml_peek(p, 0) != ']' || (aot && tb__toml_peek(p, 1) != ']')) {
    char what[48];
    return tb__toml_fail(p, p->off, "expected '%s' to close the table header, found %s",
                         aot ? "]]" : "]", tb__toml_describe(p, p->off, what, sizeof what));
  }
  p->off += aot ? 2 : 1;

  size_t n = p->nparts;
  char k[96];
  tb_toml_value_t *t = p->root;
  for (size_t i = 0; i + 1 < n; i++) {
    const tb__toml_part_t *part = &p->parts[i];
    tb__toml_entry_t *e = tb__toml_find(t, part->s, part->len);
    if (e == NULL) {
      rc = new_table(p, t, part, TB__TOML_IMPLICIT, hpos, &t);
      if (rc != 0) return rc;
      continue;
    }
    tb_toml_value_t *v = e->value;
    if (v->type == TB_TOML_TABLE && !(v->flags & TB__TOML_SEALED)) {
      t = v;
    } else if (v->type == TB_TOML_ARRAY && (v->flags & TB__TOML_AOT)) {
      /* A header below an array of tables belongs to its latest element. */
      t = v->u.arr.items[v->u.arr.len - 1];
    } else {
      tb__toml_keystr(p->parts, i + 1, k, sizeof k);
      if (v->type == TB_TOML_TABLE)
        return tb__toml_fail(p, part->off, "inline table \"%s\" (line %u) cannot be extended", k,
                             v->pos.line);
      return tb__toml_fail(p, part->off, "key \"%s\" is already defined at line %u as %s, not a table",
                           k, v->pos.line, tb_toml_type_name((tb_toml_type_t)v->type));
    }
  }

  const tb__toml_part_t *last = &p->parts[n - 1];
  tb__toml_entry_t *e = tb__toml_find(t, last->s, last->len);
  tb_toml_value_t *v = e ? e->value : NULL;
  tb__toml_keystr(p->parts, n, k, sizeof k);
  if (!aot) {
    if (v == NULL) return new_table(p, t, last, 0, hpos, &p->cur);
    if (v->type == TB_TOML_TABLE && (v->flags & TB__TOML_IMPLICIT)) {
      /* Defining a table that earlier headers only implied is allowed, once. */
      v->flags &= (uint8_t)~TB__TOML_IMPLICIT;
      v->pos = hpos;
      p->cur = v;
      return 0;
    }
    if (v->type == TB_TOML_TABLE && (v->flags & TB__TOML_DOTTED))
      return tb__toml_fail(p, last->off, "table \"%s\" is already defined by dotted keys at line %u",
                           k, v->pos.line);
    if (v->type == TB_TOML_TABLE && (v->flags & TB__TOML_SEALED))
      return tb__toml_fail(p, last->off, "inline table \"%s\" (line %u) cannot be extended", k,
                           v->pos.line);
    if (v->type == TB_TOML_TABLE)
      return tb__toml_fail(p, last->off, "table \"%s\" is already defined at line %u", k,
                           v->pos.line);
    if (v->type == TB_TOML_ARRAY && (v->flags & TB__TOML_AOT))
      return tb__toml_fail(p, last->off,
                           "\"%s\" is already defined as an array of tables at line %u", k,
                           v->pos.line);
    return tb__toml_fail(p, last->off, "key \"%s\" is already defined at line %u as %s", k,
                         v->pos.line, tb_toml_type_name((tb_toml_type_t)v->type));
  }

  tb_toml_value_t *arr = v;
  if (arr == NULL) {
    if (t->depth + 1 >= TB_TOML_MAX_DEPTH)
      return tb__toml_fail(p, last->off, "tables nest deeper than %d levels", TB_TOML_MAX_DEPTH);
    arr = tb__toml_alloc(p->arena, sizeof *arr);
    if (arr == NULL) return tb__toml_nomem(p);
    memset(arr, 0, sizeof *arr);
    arr->type = TB_TOML_ARRAY;
    arr->flags = TB__TOML_AOT;
    arr->depth = (uint16_t)(t->depth + 1);
    arr->pos = hpos;
    if (tb__toml_add(p->arena, t, last->s, last->len, last->pos, arr) != 0)
      return tb__toml_nomem(p);
  } else if (arr->type != TB_TOML_ARRAY || !(arr->flags & TB__TOML_AOT)) {
    if (arr->type == TB_TOML_ARRAY)
      return tb__toml_fail(p, last->off,
                           "cannot append to array \"%s\" defined at line %u: only arrays made "
                           "with [[...]] headers can be",
                           k, arr->pos.line);
    return tb__toml_fail(p, last->off, "key \"%s\" is already defined at line %u as %s", k,
                         arr->pos.line, tb_toml_type_name((tb_toml_type_t)arr->type));
  }
  tb_toml_value_t *elem = tb__toml_alloc(p->arena, sizeof *elem);
  if (elem == NULL) return tb__toml_nomem(p);
  memset(elem, 0, sizeof *elem);
  elem->type = TB_TOML_TABLE;
  elem->depth = (uint16_t)(arr->depth + 1);
  elem->pos = hpos;
  if (tb__toml_push(p->arena, arr, elem) != 0) return tb__toml_nomem(p);
  p->cur = elem;
  return 0;
}

static int parse_array(tb__toml_parser_t *p, tb_toml_value_t *v) {
  v->type = TB_TOML_ARRAY;
  v->flags = TB__TOML_SEALED;
  p->off++;
  char what[48];
  for (;;) {
    int rc = tb__toml_skip_wcn(p);
    if (rc != 0) return rc;
    if (tb__toml_peek(p, 0) == ']') {
      p->off++;
      return 0;
    }
    if (p->off >= p->len)
      return tb__toml_fail(p, p->off, "expected ']' to close the array opened at line %u, found "
                           "end of input", v->pos.line);
    tb_toml_value_t *elem = NULL;
    rc = parse_value(p, (uint16_t)(v->depth + 1), &elem);
    if (rc != 0) return rc;
    if (tb__toml_push(p->arena, v, elem) != 0) return tb__toml_nomem(p);
    rc = tb__toml_skip_wcn(p);
    if (rc != 0) return rc;
    int c = tb__toml_peek(p, 0);
    if (c == ',') {
      p->off++;
      continue;
    }
    if (c == ']') {
      p->off++;
      return 0;
    }
    if (c < 0)
      return tb__toml_fail(p, p->off, "expected ']' to close the array opened at line %u, found "
                           "end of input", v->pos.line);
    return tb__toml_fail(p, p->off,
                         "expected ',' or ']' after an element of the array opened at line %u, "
                         "found %s",
                         v->pos.line, tb__toml_describe(p, p->off, what, sizeof what));
  }
}

static bool at_line_end(const tb__toml_parser_t *p) {
  int c = tb__toml_peek(p, 0);
  return c == '\n' || c == '\r' || c == '#';
}

static int parse_inline_table(tb__toml_parser_t *p, tb_toml_value_t *v) {
  v->type = TB_TOML_TABLE;
  v->flags = TB__TOML_SEALED;
  p->off++;
  tb__toml_skip_ws(p);
  if (tb__toml_peek(p, 0) == '}') {
    p->off++;
    return 0;
  }
  char what[48];
  for (;;) {
    if (at_line_end(p))
      return tb__toml_fail(p, p->off, "an inline table must stay on one line in TOML 1.0");
    int rc = parse_keyval(p, v);
    if (rc != 0) return rc;
    tb__toml_skip_ws(p);
    int c = tb__toml_peek(p, 0);
    if (c == ',') {
      size_t comma = p->off++;
      tb__toml_skip_ws(p);
      if (tb__toml_peek(p, 0) == '}')
        return tb__toml_fail(p, comma,
                             "a trailing comma is not allowed in an inline table in TOML 1.0");
      continue;
    }
    if (c == '}') {
      p->off++;
      return 0;
    }
    if (at_line_end(p))
      return tb__toml_fail(p, p->off, "an inline table must stay on one line in TOML 1.0");
    return tb__toml_fail(p, p->off,
                         "expected ',' or '}' in the inline table opened at line %u, found %s",
                         v->pos.line, tb__toml_describe(p, p->off, what, sizeof what));
  }
}

/* What may follow a value: whitespace, a comment, a newline, or a closing bracket. */
static bool at_value_end(const tb__toml_parser_t *p) {
  int c = tb__toml_peek(p, 0);
  return c < 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '#' || c == ',' ||
         c == ']' || c == '}';
}

static int parse_value(tb__toml_parser_t *p, uint16_t depth, tb_toml_value_t **out) {
  size_t start = p->off;
  int c = tb__toml_peek(p, 0);
  if ((c == '[' || c == '{') && depth > TB_TOML_MAX_DEPTH)
    return tb__toml_fail(p, start, "arrays and tables nest deeper than %d levels",
                         TB_TOML_MAX_DEPTH);
  tb_toml_value_t *v = new_node(p, (tb_toml_type_t)0, start, depth);
  if (v == NULL) return tb__toml_nomem(p);
  int rc;
  if (c == '"' || c == '\'') {
    rc = tb__toml_string(p, v);
  } else if (c == '[') {
    rc = parse_array(p, v);
  } else if (c == '{') {
    rc = parse_inline_table(p, v);
  } else {
    rc = tb__toml_scalar(p, v);
    if (rc == 0 && !at_value_end(p)) {
      size_t e = p->off;
      while (e < p->len && e - start < 40 && p->src[e] > ' ' && p->src[e] < 0x7F &&
             p->src[e] != ',' && p->src[e] != ']' && p->src[e] != '}' && p->src[e] != '#')
        e++;
      rc = tb__toml_fail(p, start, "invalid %s \"%.*s\"", tb_toml_type_name((tb_toml_type_t)v->type),
                         (int)(e - start), (const char *)p->src + start);
    }
  }
  if (rc != 0) return rc;
  *out = v;
  return 0;
}

/* After a key/value or a header: optional whitespace and comment, then a newline or EOF. */
static int end_of_line(tb__toml_parser_t *p, const char *after) {
  tb__toml_skip_ws(p);
  if (tb__toml_peek(p, 0) == '#') {
    int rc = tb__toml_comment(p);
    if (rc != 0) return rc;
  }
  if (p->off >= p->len) return 0;
  int r = tb__toml_newline(p);
  if (r < 0) return r;
  if (r > 0) return 0;
  char what[48];
  return tb__toml_fail(p, p->off, "expected a newline after %s, found %s", after,
                       tb__toml_describe(p, p->off, what, sizeof what));
}

static int parse_document(tb__toml_parser_t *p) {
  while (p->off < p->len) {
    tb__toml_skip_ws(p);
    int c = tb__toml_peek(p, 0);
    int rc = 0;
    const char *after = "the value";
    if (c == '[') {
      rc = parse_header(p);
      after = "the table header";
    } else if (c >= 0 && c != '#' && c != '\n' && c != '\r') {
      rc = parse_keyval(p, p->cur);
    }
    if (rc == 0) rc = end_of_line(p, after);
    if (rc != 0) return rc;
  }
  return 0;
}

int tb_toml_parse(const char *src, size_t len, tb_toml_doc_t **out, tb_toml_error_t *err) {
  tb__toml_arena_t arena = {0};
  tb__toml_parser_t p;
  tb_toml_doc_t *doc = NULL;
  int rc = 0;

  memset(&p, 0, sizeof p);
  tb_buf_init(&p.scratch, len + 64);
  if (err != NULL) {
    err->line = 0;
    err->col = 0;
    err->msg[0] = '\0';
  }
  if (out != NULL) *out = NULL;
  if (out == NULL || (src == NULL && len > 0)) {
    rc = TB_EINVAL;
    goto out;
  }
  /* Offsets into a NULL pointer are undefined even when zero; an empty text is not. */
  p.src = (const uint8_t *)(src ? src : "");
  p.len = len;
  p.arena = &arena;
  p.err = err;
  p.cur_line = 1;
  p.cur_col = 1;
  /* A UTF-8 byte order mark is allowed at the very start and is not a column. */
  if (len >= 3 && memcmp(p.src, "\xEF\xBB\xBF", 3) == 0) p.start = 3;
  p.off = p.cur_off = p.start;

  rc = tb__toml_check_utf8(&p);
  if (rc != 0) goto out;
  doc = tb__toml_alloc(&arena, sizeof *doc);
  p.root = doc ? new_node(&p, TB_TOML_TABLE, p.start, 0) : NULL;
  if (p.root == NULL) {
    rc = tb__toml_nomem(&p);
    goto out;
  }
  p.cur = p.root;
  rc = parse_document(&p);
  if (rc != 0) goto out;

  /* The document moves into its own arena; from here tb_toml_free owns the chunks. */
  doc->root = p.root;
  doc->arena = arena;
  arena = (tb__toml_arena_t){0};
  *out = doc;
out:
  tb_buf_deinit(&p.scratch);
  if (p.c_locale != (locale_t)0) freelocale(p.c_locale);
  tb__toml_arena_free(&arena);
  return rc;
}
