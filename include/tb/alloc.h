/*
 * alloc.h — the allocation functions every Tabbify component calls.
 *
 * They behave like malloc/calloc/realloc/free but return NULL instead of aborting, and
 * tests can make them fail on purpose: tb_alloc_fail_after(n) lets n more allocations
 * succeed on the calling thread and fails the ones after that, so a test can walk every
 * failure point of a function and check that each one ends in TB_ENOMEM with nothing
 * leaked. Anything sized by untrusted input must be allocated through these and must
 * treat NULL as an error, never as a reason to abort.
 */
#ifndef TB_ALLOC_H
#define TB_ALLOC_H

#include <stddef.h>

/** malloc(n); n == 0 yields a unique non-NULL pointer. NULL on failure. */
void *tb_malloc(size_t n);
/** calloc(count, size) with overflow checking. NULL on failure or overflow. */
void *tb_calloc(size_t count, size_t size);
/** realloc(p, n); on failure `p` is untouched and still owned by the caller. */
void *tb_realloc(void *p, size_t n);
/** reallocarray: realloc(p, count * size) with overflow checking. */
void *tb_reallocarray(void *p, size_t count, size_t size);
/** free(p); NULL is fine. */
void tb_free(void *p);
/** A tb_malloc'd copy of the NUL-terminated `s`, or NULL. */
char *tb_strdup(const char *s);
/** A tb_malloc'd, NUL-terminated copy of the first `n` bytes of `p`, or NULL. */
char *tb_strndup(const char *p, size_t n);

/*
 * Failure injection, for tests. Thread-local: it only affects the calling thread.
 * tb_alloc_fail_after(n): the next n allocations succeed, every later one fails, until
 * tb_alloc_fail_after(-1) turns injection off (the default).
 */
void tb_alloc_fail_after(long n);
/** Number of allocation calls made on this thread since start (including failed ones). */
unsigned long tb_alloc_count(void);

#endif /* TB_ALLOC_H */
