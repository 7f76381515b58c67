/*
 * buf.h — byte slices and bounded, growable byte buffers.
 *
 * A tb_slice_t borrows bytes it does not own: it is valid only while its source is.
 * A tb_buf_t owns a heap array that grows on demand up to a maximum fixed at init
 * (curl's dynbuf "toobig"): appending past it fails with TB_ETOOBIG and leaves the
 * buffer as it was, so a hostile input can never make us allocate without bound.
 * The contents are always followed by a NUL byte (not counted in len) once anything
 * has been appended, so text can be passed to C string functions directly.
 */
#ifndef TB_BUF_H
#define TB_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tb_slice {
  const uint8_t *ptr;
  size_t len;
} tb_slice_t;

/** A slice over a NUL-terminated string (without the NUL). */
tb_slice_t tb_slice_cstr(const char *s);
/** A slice over `len` bytes at `p`. */
static inline tb_slice_t tb_slice(const void *p, size_t len) {
  return (tb_slice_t){(const uint8_t *)p, len};
}
/** True when both slices hold the same bytes. */
bool tb_slice_eq(tb_slice_t a, tb_slice_t b);
/** True when `a` holds exactly the bytes of the string `s`. */
bool tb_slice_eq_cstr(tb_slice_t a, const char *s);
/** True when `a` begins with `prefix`. */
bool tb_slice_starts_with(tb_slice_t a, tb_slice_t prefix);

typedef struct tb_buf {
  uint8_t *data; /* NULL until the first append; owned */
  size_t len;
  size_t cap;
  size_t max; /* hard limit on len */
} tb_buf_t;

/** Default limit used by tb_buf_init callers with no better bound: 64 MiB. */
#define TB_BUF_DEFAULT_MAX ((size_t)64 << 20)

/** Prepares an empty buffer that may hold at most `max` bytes. Allocates nothing. */
void tb_buf_init(tb_buf_t *b, size_t max);
/** Frees the contents; the buffer may be re-used after tb_buf_init. */
void tb_buf_deinit(tb_buf_t *b);
/** Drops the contents but keeps the allocation. */
void tb_buf_reset(tb_buf_t *b);
/** Makes room for `extra` more bytes. TB_ETOOBIG past max, TB_ENOMEM. */
int tb_buf_reserve(tb_buf_t *b, size_t extra);
/** Appends `n` bytes. On error the buffer is unchanged. */
int tb_buf_append(tb_buf_t *b, const void *p, size_t n);
/** Appends a NUL-terminated string (without its NUL). */
int tb_buf_puts(tb_buf_t *b, const char *s);
/** Appends one byte. */
int tb_buf_putc(tb_buf_t *b, int c);
/** Appends formatted text. On error the buffer is unchanged. */
int tb_buf_printf(tb_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tb_buf_vprintf(tb_buf_t *b, const char *fmt, va_list ap);
/** The contents as a NUL-terminated string ("" when empty); borrowed. */
const char *tb_buf_cstr(const tb_buf_t *b);
/** The contents as a slice; borrowed, valid until the next change. */
static inline tb_slice_t tb_buf_slice(const tb_buf_t *b) { return tb_slice(b->data, b->len); }
/**
 * Hands the contents to the caller (free with tb_free) and leaves the buffer empty.
 * Returns a NUL-terminated allocation even when empty, or NULL on allocation failure.
 */
char *tb_buf_steal(tb_buf_t *b, size_t *len);

#endif /* TB_BUF_H */
