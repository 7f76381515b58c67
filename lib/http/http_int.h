/*
 * http_int.h — what the server and the client of lib/http share: the stream handle
 * union, the mapping of libuv errors to ours, and socket address helpers.
 */
#ifndef TB_HTTP_INT_H
#define TB_HTTP_INT_H

#include <sys/socket.h>
#include <uv.h>

#include "tb/http.h"

/* A connection is TCP or a unix socket; both are uv streams. */
typedef union tb__http_stream {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} tb__http_stream_t;

/* The bytes a connection reads into when no size is configured. */
#define TB__HTTP_READ_BUFFER ((size_t)64 << 10)

/* libuv reports errno values negated, as we do; a few of its own codes need mapping. */
static inline int tb__http_uv_err(int uverr) {
  if (uverr == UV_EOF) return TB_ECONNRESET;
  if (uverr == UV_ECANCELED) return TB_ECANCELED;
  if (uverr <= UV_EAI_ADDRFAMILY && uverr >= UV_EAI_SOCKTYPE) return TB_ENOTFOUND;
  if (uverr < -4000) return TB_EIO;
  return uverr;
}

/** Sets SIGPIPE to SIG_IGN unless the program installed its own disposition: a peer that
 *  closes while we write must be an EPIPE, not the death of the process. */
void tb__http_ignore_sigpipe(void);

/** Fills `ss` from a numeric address (IPv4, or IPv6 with an optional "%zone").
 *  Returns 0, or TB_EINVAL when the host is not numeric. */
int tb__http_sockaddr(const tb_http_addr_t *a, struct sockaddr_storage *ss);

/** Writes "1.2.3.4:80" or "[::1]:80" for `sa` into `out`. */
void tb__http_format_sockaddr(const struct sockaddr *sa, char *out, size_t size);

#endif /* TB_HTTP_INT_H */
