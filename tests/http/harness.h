/*
 * harness.h — what the HTTP server and client tests share: a server with test routes on
 * an ephemeral loopback port, the curl binary run on the same loop, and a raw socket
 * client for what curl will not send (pipelining, malformed requests, stalls).
 */
#ifndef TB_TEST_HTTP_HARNESS_H
#define TB_TEST_HTTP_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tb/buf.h"
#include "tb/http.h"

/* The test server: routes
 *   /hello            200 "hello\n"
 *   /echo             the request body streamed back (Content-Length kept, else chunked)
 *   /count            reads the body, answers its length and a checksum
 *   /stream?n=N       N bytes of pattern, chunked, written as the client takes them
 *   /slow?ms=M        answers "late\n" after M ms
 *   /reject           413 without reading the body
 *   /short            promises 10 bytes, sends 3
 *   /abort            starts a chunked answer, sends "partial", then tb_http_resp_abort
 *   anything else     404 JSON error
 */
typedef struct th_server {
  uv_loop_t *loop;
  tb_http_server_t *srv;
  int port;
  size_t max_queued;     /* the most response bytes /echo had queued */
  uint64_t body_bytes;   /* request body bytes the routes read */
  int done_ok, done_err; /* on_done results */
  int last_done_err;
  bool closed;
} th_server_t;

/** Starts the test server on `addr` ("127.0.0.1:0", "[::1]:0", "unix:/path"). */
void th_server_start(th_server_t *s, uv_loop_t *loop, const tb_http_server_config_t *cfg, const char *addr);
/** Closes it and runs the loop until it is freed. */
void th_server_stop(th_server_t *s);

/** The test pattern: byte i of a stream is (i * 7 + i / 251) & 0xff. */
uint8_t th_pattern(uint64_t i);

/* Runs the curl binary with `args` (NULL-terminated, without "curl") on `loop` until it
 * exits and its output is read. stdin: `in_len` pattern bytes, written in pieces as curl
 * takes them, then closed (in_len 0: /dev/null). stdout is kept up to out_max bytes
 * (more is counted, checked against the pattern when check_pattern is set). */
typedef struct th_curl {
  int exit_status;
  tb_buf_t out;      /* stdout (first out_max bytes) */
  tb_buf_t err;      /* stderr */
  uint64_t out_len;  /* stdout bytes in all */
  bool out_pattern_ok;
} th_curl_t;

void th_curl_run(uv_loop_t *loop, const char *const *args, uint64_t in_len, size_t out_max, th_curl_t *res);
void th_curl_free(th_curl_t *res);
/** Counts occurrences of `needle` in `hay`. */
int th_count(const char *hay, const char *needle);

/* A raw TCP client: connects to 127.0.0.1:port, writes `npieces` pieces with `gap_ms`
 * between them, reads until the server closes or `timeout_ms` passes. */
typedef struct th_raw {
  tb_buf_t got;
  bool closed_by_server;
  int err;
} th_raw_t;

void th_raw_run(uv_loop_t *loop, int port, const char *const *pieces, size_t npieces, uint64_t gap_ms,
                uint64_t timeout_ms, th_raw_t *res);
void th_raw_free(th_raw_t *res);

#endif
