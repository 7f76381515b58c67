/*
 * err.h — Tabbify's error codes, from one table.
 *
 * Every function that can fail returns int: 0 on success, a negative TB_E* code on
 * failure. System errors keep their errno value, negated (TB_ENOENT == -ENOENT), as libuv
 * does, so a failed syscall maps with tb_err_from_errno(errno) and nothing is lost. Codes
 * that are Tabbify's own live below -4000, far from any errno.
 *
 * Functions that parse or load user input also fill a tb_errbuf (below) with a sentence
 * that names what was wrong and where; the code says what kind of failure it was, the
 * sentence is what users read.
 */
#ifndef TB_ERR_H
#define TB_ERR_H

#include <errno.h>
#include <stddef.h>

/* X(name, value, message). The message is lower case, no trailing period. */
#define TB_ERR_MAP(X)                                                      \
  X(EPERM, -EPERM, "operation not permitted")                              \
  X(ENOENT, -ENOENT, "no such file or directory")                          \
  X(EINTR, -EINTR, "interrupted system call")                              \
  X(EIO, -EIO, "i/o error")                                                \
  X(EBADF, -EBADF, "bad file descriptor")                                  \
  X(EAGAIN, -EAGAIN, "resource temporarily unavailable")                   \
  X(ENOMEM, -ENOMEM, "out of memory")                                      \
  X(EACCES, -EACCES, "permission denied")                                  \
  X(EFAULT, -EFAULT, "bad address")                                        \
  X(EBUSY, -EBUSY, "resource busy")                                        \
  X(EEXIST, -EEXIST, "already exists")                                     \
  X(ENOTDIR, -ENOTDIR, "not a directory")                                  \
  X(EISDIR, -EISDIR, "is a directory")                                     \
  X(EINVAL, -EINVAL, "invalid argument")                                   \
  X(EMFILE, -EMFILE, "too many open files")                                \
  X(EFBIG, -EFBIG, "file too large")                                       \
  X(ENOSPC, -ENOSPC, "no space left on device")                            \
  X(EPIPE, -EPIPE, "broken pipe")                                          \
  X(ERANGE, -ERANGE, "result out of range")                                \
  X(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                          \
  X(ENOSYS, -ENOSYS, "function not implemented")                           \
  X(ENOTEMPTY, -ENOTEMPTY, "directory not empty")                          \
  X(ELOOP, -ELOOP, "too many symbolic links")                              \
  X(ENOTSUP, -ENOTSUP, "operation not supported")                          \
  X(EADDRINUSE, -EADDRINUSE, "address already in use")                     \
  X(EADDRNOTAVAIL, -EADDRNOTAVAIL, "address not available")                \
  X(ENETUNREACH, -ENETUNREACH, "network is unreachable")                   \
  X(ECONNABORTED, -ECONNABORTED, "connection aborted")                     \
  X(ECONNRESET, -ECONNRESET, "connection reset by peer")                   \
  X(ETIMEDOUT, -ETIMEDOUT, "timed out")                                    \
  X(ECONNREFUSED, -ECONNREFUSED, "connection refused")                     \
  X(EHOSTUNREACH, -EHOSTUNREACH, "host is unreachable")                    \
  X(ECANCELED, -ECANCELED, "operation canceled")                           \
  /* Tabbify's own codes. */                                               \
  X(EPARSE, -4001, "malformed input")                                      \
  X(ETOOBIG, -4002, "size limit exceeded")                                 \
  X(ECORRUPT, -4003, "stored data is corrupt")                             \
  X(EUNSUPPORTED, -4004, "unsupported feature")                            \
  X(ENOTFOUND, -4005, "not found")                                         \
  X(ECONFLICT, -4006, "conflicts with the current state")                  \
  X(ETRAP, -4007, "webassembly trap")                                      \
  X(EAUTH, -4008, "authentication failed")                                 \
  X(EDENIED, -4009, "not allowed")                                         \
  X(EINTERNAL, -4010, "internal error")

enum {
#define TB_ERR_ENUM_(name, value, msg) TB_##name = (value),
  TB_ERR_MAP(TB_ERR_ENUM_)
#undef TB_ERR_ENUM_
};

/** A sentence for `err` ("no such file or directory"); never NULL, static storage. */
const char *tb_strerror(int err);

/** The code's name ("TB_ENOENT"), or "TB_EUNKNOWN" for a value not in the table. */
const char *tb_err_name(int err);

/** Maps a positive errno value to its TB_E* code; 0 maps to TB_EINTERNAL. */
static inline int tb_err_from_errno(int e) { return e > 0 ? -e : TB_EINTERNAL; }

/*
 * A caller-owned buffer for the human sentence that goes with an error. Parsers write at
 * most `size` bytes including the NUL; a NULL errbuf (or size 0) means "don't tell me".
 */
typedef struct tb_errbuf {
  char *buf;
  size_t size;
} tb_errbuf_t;

/** Formats into `eb` (if any) and returns `err`, so callers can `return tb_errf(...)`. */
int tb_errf(tb_errbuf_t *eb, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* TB_ERR_H */
