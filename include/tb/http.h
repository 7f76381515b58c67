/*
 * http.h — HTTP/1.1 for every Tabbify program that speaks it: a protocol core that does
 * no I/O, a server and a client on libuv.
 *
 * The protocol core turns bytes into events (tb_http_parser_t, a wrapper around
 * http-parser that adds limits, header collection and pausing) and events into bytes
 * (the head serialisers and chunk framing). It is what the fuzz target drives and what
 * the unit tests check on byte buffers.
 *
 * The server (tb_http_server_t) hands each request to a handler as soon as its head has
 * arrived; the body follows as a stream of chunks that the handler pulls with
 * tb_http_req_read_start/_stop (backpressure: while it is stopped, at most one read
 * buffer per connection is held). The response is written incrementally with a fixed
 * length or chunked. Limits on head size, header count, body size and idle time come
 * from tb_http_server_config_t and answer 431, 431, 413 and 408; malformed input answers
 * 400. Every error response the layer sends itself has a JSON body
 * {"error":"<code>","message":"<sentence>","status":N}.
 *
 * The client (tb_http_client_t) keeps a pool of idle keep-alive connections per
 * host:port (or unix socket), streams request bodies from a callback, delivers the
 * response head then body chunks, and times out connects and silences.
 *
 * Signals: creating a server or a client sets SIGPIPE to SIG_IGN if it is still at its
 * default, so that writing to a peer that went away is an error, not the end of the
 * process.
 *
 * Threading: a server or client, and everything obtained from it, belongs to the thread
 * running its uv_loop_t; call nothing from another thread. No callback ever runs inside
 * the API call that registered it, except where a function says so. Design notes:
 * docs/internals/HTTP.md.
 */
#ifndef TB_HTTP_H
#define TB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tb/buf.h"
#include "tb/err.h"

/* ---------------------------------------------------------------------------------- */
/* Messages                                                                           */
/* ---------------------------------------------------------------------------------- */

/**
 * One header field. Received headers have NUL-terminated name and value (the name as
 * sent, the value with surrounding blanks removed) and both lengths set. Headers given
 * to a serialiser need NUL-terminated strings only; the lengths are ignored there.
 */
typedef struct tb_http_header {
  const char *name;
  const char *value;
  size_t name_len;
  size_t value_len;
} tb_http_header_t;

/**
 * The head of a request or a response, as parsed. Every pointer points into the parser
 * that produced it and stays valid until that parser starts the next message or is
 * freed; the server and client document the equivalent for their callbacks.
 */
typedef struct tb_http_head {
  const char *method;   /* requests: "GET", "POST", ...; responses: NULL */
  const char *target;   /* requests: the request-target as sent ("/a/b?c=d"); else "" */
  int status;           /* responses: the status code; requests: 0 */
  const char *reason;   /* responses: the reason phrase ("" if none); requests: "" */
  int version_major;    /* 1 */
  int version_minor;    /* 0 or 1 */
  const tb_http_header_t *headers;
  size_t nheaders;
  int64_t content_length; /* -1 when the message has no Content-Length */
  bool chunked;           /* Transfer-Encoding: chunked */
  bool keep_alive;        /* the sender allows another message on this connection */
  bool expect_continue;   /* requests: Expect: 100-continue */
  bool upgrade;           /* Upgrade handshake or CONNECT: bytes after it are not HTTP */
} tb_http_head_t;

/** The value of the first header called `name` (case-insensitive), or NULL. Borrowed. */
const char *tb_http_head_get(const tb_http_head_t *head, const char *name);

/** The standard reason phrase for `status` ("Not Found"), or "Unknown". Static. */
const char *tb_http_status_reason(int status);

/**
 * Limits on what a peer may send. A zero field means "the default". Exceeding them is an
 * error with a status: head bytes and header count 431, body bytes 413.
 */
typedef struct tb_http_limits {
  size_t max_head_bytes;   /* request/status line plus header lines; default 16 KiB */
  size_t max_headers;      /* header fields in one head; default 64 */
  uint64_t max_body_bytes; /* decoded body bytes; default 64 MiB; UINT64_MAX: none */
} tb_http_limits_t;

#define TB_HTTP_DEFAULT_MAX_HEAD_BYTES ((size_t)16 << 10)
#define TB_HTTP_DEFAULT_MAX_HEADERS ((size_t)64)
#define TB_HTTP_DEFAULT_MAX_BODY_BYTES ((uint64_t)64 << 20)
/** http-parser refuses heads longer than this whatever the limit says (also a 431). */
#define TB_HTTP_PARSER_HEAD_CEILING ((size_t)80 << 10)

/* ---------------------------------------------------------------------------------- */
/* Protocol core: the parser                                                          */
/* ---------------------------------------------------------------------------------- */

typedef enum tb_http_kind { TB_HTTP_REQUEST = 0, TB_HTTP_RESPONSE = 1 } tb_http_kind_t;

typedef struct tb_http_parser tb_http_parser_t;

/** A parser callback returns 0 to go on, TB_HTTP_PAUSE to make tb_http_parser_feed
 *  return right after this event, or a negative TB_E code to fail the feed with it. */
#define TB_HTTP_PAUSE 1

typedef struct tb_http_parser_cbs {
  /** The head is complete. `head` is valid until the next message starts. */
  int (*on_head)(void *ud, const tb_http_head_t *head);
  /** A piece of the (de-chunked) body; `data` is borrowed for the call. */
  int (*on_data)(void *ud, const uint8_t *data, size_t len);
  /** The message is complete (trailers, if any, were read and dropped). */
  int (*on_end)(void *ud);
} tb_http_parser_cbs_t;

/**
 * Creates a parser for requests or responses. `limits` may be NULL (defaults); `cbs`
 * is copied; any callback may be NULL. Free with tb_http_parser_free.
 */
int tb_http_parser_new(tb_http_kind_t kind, const tb_http_limits_t *limits,
                       const tb_http_parser_cbs_t *cbs, void *ud, tb_http_parser_t **out);
void tb_http_parser_free(tb_http_parser_t *p);

/**
 * Parses up to `len` bytes. Returns 0 with *consumed == len, or 0 with fewer bytes
 * consumed when a callback returned TB_HTTP_PAUSE (feed the rest later, from
 * data + *consumed), or a negative code: TB_EPARSE (malformed), TB_ETOOBIG (a limit;
 * see tb_http_parser_status), TB_EUNSUPPORTED (bytes after an upgrade), or the code a
 * callback returned. Errors are sticky: every later feed returns the same code. The
 * callbacks run inside this call; they must not feed the same parser.
 */
int tb_http_parser_feed(tb_http_parser_t *p, const uint8_t *data, size_t len, size_t *consumed);

/**
 * Tells the parser the peer closed the connection. A response delimited by the close
 * completes here (on_end runs). Returns 0 when no message was cut short, else TB_EPARSE.
 */
int tb_http_parser_finish(tb_http_parser_t *p);

/** For response parsers: the next response answers a HEAD request, so has no body. */
void tb_http_parser_set_skip_body(tb_http_parser_t *p, bool skip);

/** After an error: the status to answer with (400, 413, 431), or 0 if none applies. */
int tb_http_parser_status(const tb_http_parser_t *p);

/** After an error: a sentence that says what was wrong; "" otherwise. Borrowed. */
const char *tb_http_parser_error(const tb_http_parser_t *p);

/** True while a message has begun and not ended (its first byte has been parsed). */
bool tb_http_parser_in_message(const tb_http_parser_t *p);

/* ---------------------------------------------------------------------------------- */
/* Protocol core: serialising                                                         */
/* ---------------------------------------------------------------------------------- */

/**
 * What a response head decides about the body that follows. The caller fills the
 * inputs; tb_http_response_head fills the outputs.
 */
typedef struct tb_http_framing {
  /* in */
  int64_t content_length; /* the body's length, or -1 if not known in advance */
  bool head_request;      /* the request was HEAD: headers describe a body never sent */
  int request_minor;      /* the request's HTTP/1.x minor version */
  bool keep_alive;        /* the connection may stay open (in), and will (out) */
  /* out */
  bool chunked;           /* send the body with chunked framing */
  bool no_body;           /* send no body bytes at all (HEAD, 1xx, 204, 304) */
  bool close_delimited;   /* the body ends when the connection closes (HTTP/1.0) */
} tb_http_framing_t;

/**
 * Appends a response head to `out`: status line (reason from the table when `reason`
 * is NULL), the caller's headers, Date (unless the caller gave one), and the framing
 * headers. The caller's
 * Content-Length, Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade and
 * Proxy-Connection headers are dropped: framing is the layer's, and those are
 * hop-by-hop (so a proxy can pass an upstream's headers through unchanged). Returns
 * TB_EINVAL for a status outside 100..999 or a name or value with CR, LF or NUL (or a
 * name that is not a token), TB_ETOOBIG/TB_ENOMEM from `out` (left unchanged then).
 */
int tb_http_response_head(tb_buf_t *out, int status, const char *reason,
                          const tb_http_header_t *headers, size_t nheaders, tb_http_framing_t *f);

/**
 * Appends a request head to `out`. `content_length` >= 0 sends Content-Length (omitted
 * when 0 for methods that carry no body, GET, HEAD, DELETE, OPTIONS), -1 sends
 * Transfer-Encoding: chunked. `host` is the Host value. Hop-by-hop and framing headers
 * of the caller are dropped as for responses, and so is Host. Same errors.
 */
int tb_http_request_head(tb_buf_t *out, const char *method, const char *target, const char *host,
                         const tb_http_header_t *headers, size_t nheaders, int64_t content_length,
                         bool keep_alive);

/** Bytes a chunk-size line can take: 16 hex digits and CRLF. */
#define TB_HTTP_CHUNK_PREFIX_MAX 19
/** Writes the chunk-size line for a `len`-byte chunk ("1f\r\n"); returns its length. */
size_t tb_http_chunk_prefix(char out[TB_HTTP_CHUNK_PREFIX_MAX], size_t len);
/** The last chunk and the end of the message, without trailers. */
#define TB_HTTP_CHUNK_LAST "0\r\n\r\n"

/**
 * Appends {"error":code,"message":message,"status":status} to `out`: the error body
 * every Tabbify HTTP service sends. `message` is JSON-escaped.
 */
int tb_http_error_json(tb_buf_t *out, int status, const char *code, const char *message);

/* ---------------------------------------------------------------------------------- */
/* Addresses                                                                          */
/* ---------------------------------------------------------------------------------- */

typedef enum tb_http_addr_kind { TB_HTTP_ADDR_TCP = 0, TB_HTTP_ADDR_UNIX = 1 } tb_http_addr_kind_t;

/** Space for a unix socket path with its NUL (sockaddr_un.sun_path). */
#define TB_HTTP_UNIX_PATH_MAX 108

typedef struct tb_http_addr {
  tb_http_addr_kind_t kind;
  char host[256];  /* TCP: a name, IPv4 or IPv6 text without brackets, maybe "%zone" */
  uint16_t port;   /* TCP */
  char path[TB_HTTP_UNIX_PATH_MAX]; /* UNIX */
} tb_http_addr_t;

/**
 * Parses "host:port", "1.2.3.4:port", "[v6]:port", "[fe80::1%eth0]:port" or
 * "unix:/path/to.sock". With `default_port` > 0 the ":port" may be left out.
 * Returns 0 or TB_EINVAL with a sentence in `eb`.
 */
int tb_http_addr_parse(const char *text, int default_port, tb_http_addr_t *out, tb_errbuf_t *eb);

/**
 * A parsed http:// URL. `target` points into the string given to tb_http_url_parse and
 * is `target_len` bytes long (path and query, without the fragment; "/" when the URL has
 * no path); `authority` is what the Host header carries (without a zone).
 */
typedef struct tb_http_url {
  tb_http_addr_t addr;
  char authority[300];
  const char *target;
  size_t target_len;
} tb_http_url_t;

/**
 * Parses "http://host[:port][/path][?query]". The host may be an IPv6 literal in
 * brackets with a zone ("%25eth0" as RFC 6874 spells it, or a bare "%eth0"). The
 * fragment is dropped. Only http is accepted (TLS terminates in front of the node).
 * `url` must outlive `out`. Returns 0 or TB_EINVAL with a sentence in `eb`.
 */
int tb_http_url_parse(const char *url, tb_http_url_t *out, tb_errbuf_t *eb);

/* ---------------------------------------------------------------------------------- */
/* Server                                                                             */
/* ---------------------------------------------------------------------------------- */

typedef struct tb_http_server tb_http_server_t;
/** One exchange: a request and its response. */
typedef struct tb_http_req tb_http_req_t;

typedef struct tb_http_server_config {
  tb_http_limits_t limits;    /* per request */
  uint64_t idle_timeout_ms;   /* silence while we wait on the client: 408/close; 60 s */
  uint64_t head_timeout_ms;   /* time to receive one head, however it trickles; 30 s */
  size_t max_connections;     /* more are accepted and closed at once; 1024 */
  size_t read_buffer_size;    /* per connection; the most request bytes held; 64 KiB */
  size_t drain_max_bytes;     /* unread body read and dropped to keep a connection; 64 KiB */
  uint64_t close_grace_ms;    /* tb_http_server_close waits this long for exchanges; 5 s */
} tb_http_server_config_t;

/**
 * Called on the loop thread when a request head has arrived. `req` is valid until its
 * on_done callback returns (see tb_http_req_on_done); a handler that answers later than
 * this call (after I/O of its own) must register on_done to learn when `req` goes away.
 * The handler answers with tb_http_resp_*; the body is not read until it calls
 * tb_http_req_read_start.
 */
typedef void (*tb_http_handler_fn)(tb_http_req_t *req, void *ud);

/**
 * Creates a server on `loop`. `cfg` may be NULL (defaults); it is copied. `handler`
 * receives `ud`. Nothing listens until tb_http_server_listen.
 */
int tb_http_server_new(uv_loop_t *loop, const tb_http_server_config_t *cfg, tb_http_handler_fn handler,
                       void *ud, tb_http_server_t **out);

/**
 * Listens on `addr` ("127.0.0.1:0", "[::1]:8090", "[fd5a:...::1]:8730", "unix:/run/x.sock";
 * numeric hosts only, port 0 for an ephemeral port). May be called more than once.
 * IPv6 sockets are bound v6-only. A unix socket path must not exist yet (a stale one is
 * the caller's to remove). Returns 0 or a TB_E code with a sentence in `eb`.
 */
int tb_http_server_listen(tb_http_server_t *srv, const char *addr, tb_errbuf_t *eb);

/** The port of the first TCP listener (what port 0 became), or TB_ENOENT. */
int tb_http_server_port(const tb_http_server_t *srv);

/**
 * Stops accepting, closes idle connections, lets exchanges in flight finish (answered
 * with Connection: close) for up to close_grace_ms, then closes what is left (their
 * on_done gets TB_ECANCELED). Frees the server, then calls `on_closed(ud)` (may be NULL).
 */
void tb_http_server_close(tb_http_server_t *srv, void (*on_closed)(void *ud), void *ud);

typedef struct tb_http_server_stats {
  uint64_t connections; /* accepted since start */
  uint64_t requests;    /* heads handed to the handler */
  size_t open;          /* connections open now */
  size_t queued_peak;   /* the most response bytes queued on one connection at once */
} tb_http_server_stats_t;

void tb_http_server_stats(const tb_http_server_t *srv, tb_http_server_stats_t *out);

/** The request head; valid as long as `req`. */
const tb_http_head_t *tb_http_req_head(const tb_http_req_t *req);
/** Shorthand for tb_http_head_get(tb_http_req_head(req), name). */
const char *tb_http_req_header(const tb_http_req_t *req, const char *name);
/** The peer as "127.0.0.1:5000", "[::1]:5000" or "unix"; valid as long as `req`. */
const char *tb_http_req_peer(const tb_http_req_t *req);
/** A pointer the handler keeps with the exchange. */
void tb_http_req_set_data(tb_http_req_t *req, void *data);
void *tb_http_req_data(const tb_http_req_t *req);

typedef void (*tb_http_req_data_fn)(tb_http_req_t *req, const uint8_t *data, size_t len, void *ud);
typedef void (*tb_http_req_end_fn)(tb_http_req_t *req, void *ud);
typedef void (*tb_http_req_done_fn)(tb_http_req_t *req, int err, void *ud);
/** Completion of one tb_http_resp_write: 0 once the bytes are handed to the kernel. */
typedef void (*tb_http_write_fn)(tb_http_req_t *req, int status, void *ud);

/**
 * Starts (or resumes) delivery of the request body: `on_data` for each piece (borrowed
 * for the call), then `on_end` once. For a request with Expect: 100-continue the first
 * call sends "100 Continue", unless a response has started. Calling it again replaces
 * the callbacks. Returns TB_ECANCELED if the exchange is being torn down.
 */
int tb_http_req_read_start(tb_http_req_t *req, tb_http_req_data_fn on_data, tb_http_req_end_fn on_end, void *ud);
/** Pauses body delivery (backpressure); no on_data runs until the next read_start. */
void tb_http_req_read_stop(tb_http_req_t *req);

/**
 * Registers the last callback of the exchange: err 0 when the response was flushed and
 * the request fully read, or TB_ECONNRESET (client went away), TB_ETIMEDOUT, TB_ETOOBIG
 * (body over the limit), TB_EPARSE (malformed body), TB_ECANCELED (server closing). Every
 * pending write callback runs before it; `req` is freed when it returns.
 */
void tb_http_req_on_done(tb_http_req_t *req, tb_http_req_done_fn on_done, void *ud);

/**
 * Sends the status line and headers (see tb_http_response_head for what is added and
 * dropped). `content_length` -1 streams the body chunked (or close-delimited to an
 * HTTP/1.0 client). Returns TB_EINVAL if a response has already started or a header is
 * invalid, TB_ECANCELED if the exchange is being torn down.
 */
int tb_http_resp_start(tb_http_req_t *req, int status, const tb_http_header_t *headers, size_t nheaders,
                       int64_t content_length);
/**
 * Queues `len` body bytes (copied; the caller may reuse `data` at once). `cb` (may be
 * NULL) runs when they are written; use it, or tb_http_resp_queued, for backpressure.
 * For HEAD and bodiless statuses the bytes are dropped (cb still runs). Returns
 * TB_EINVAL before resp_start, after resp_end, or past the Content-Length,
 * TB_ECANCELED if the exchange is being torn down, TB_ENOMEM. If it fails, cb never runs.
 */
int tb_http_resp_write(tb_http_req_t *req, const void *data, size_t len, tb_http_write_fn cb, void *ud);
/** Finishes the response. TB_EINVAL if fewer bytes than the Content-Length were written
 *  (the connection is then closed, since the client cannot tell where the body ends). */
int tb_http_resp_end(tb_http_req_t *req);
/**
 * Ends the exchange without finishing its response, so that the client sees a truncated
 * message rather than a clean end: what was queued is flushed, then the connection is
 * half-closed and closed (no last chunk, fewer bytes than a Content-Length promised).
 * For a proxy whose upstream failed after the response head went out. Later resp_* and
 * read_start calls return TB_ECANCELED; on_done runs with TB_ECONNABORTED. A no-op if the
 * exchange is already being torn down. Pending write callbacks still run.
 */
void tb_http_resp_abort(tb_http_req_t *req);
/** Response bytes accepted by tb_http_resp_write and not yet written to the socket. */
size_t tb_http_resp_queued(const tb_http_req_t *req);
/** start + write + end with a fixed body and one Content-Type (NULL: none). */
int tb_http_resp_send(tb_http_req_t *req, int status, const char *content_type, const void *body, size_t len);
/** A JSON error response: tb_http_error_json's body with its status. */
int tb_http_resp_error(tb_http_req_t *req, int status, const char *code, const char *message);

/* ---------------------------------------------------------------------------------- */
/* Client                                                                             */
/* ---------------------------------------------------------------------------------- */

typedef struct tb_http_client tb_http_client_t;
/** One request in flight and its response. */
typedef struct tb_http_call tb_http_call_t;

typedef struct tb_http_client_config {
  tb_http_limits_t limits;    /* on responses */
  size_t max_idle_per_host;   /* idle keep-alive connections kept per host:port; 8 */
  uint64_t pool_idle_ms;      /* an idle connection is closed after this; 30 s */
  uint64_t connect_timeout_ms;/* 10 s */
  size_t read_buffer_size;    /* per connection; 64 KiB */
} tb_http_client_config_t;

/**
 * Supplies the request body: copy up to `cap` bytes into `buf` and return how many;
 * return 0 at the end, TB_EAGAIN when no bytes are ready yet (call
 * tb_http_call_body_ready when they are), or a negative code to fail the call with.
 * Never called again before the previous piece was written (one chunk in flight).
 */
typedef long (*tb_http_body_source_fn)(tb_http_call_t *call, uint8_t *buf, size_t cap, void *ud);

typedef struct tb_http_request {
  const char *method;          /* "GET" if NULL */
  const char *url;             /* "http://[::1]:8090/v1/apps"; borrowed for the call */
  const char *unix_socket;     /* if set, connect here; the URL gives target and Host */
  const tb_http_header_t *headers;
  size_t nheaders;
  const void *body;            /* a body in memory; borrowed until on_done */
  size_t body_len;
  tb_http_body_source_fn body_source; /* or a streamed body (then `body` is NULL) */
  int64_t body_length;         /* streamed body's length, or -1: chunked */
  uint64_t timeout_ms;         /* no byte sent or received for this long: TB_ETIMEDOUT; 0: none */
} tb_http_request_t;

typedef struct tb_http_call_cbs {
  /** The final response head (interim 1xx are skipped); valid until on_done returns. */
  void (*on_response)(tb_http_call_t *call, const tb_http_head_t *head, void *ud);
  /** A piece of the response body; borrowed for the call. */
  void (*on_data)(tb_http_call_t *call, const uint8_t *data, size_t len, void *ud);
  /** The end: 0 after the whole response, else why it failed. Always runs once unless
   *  tb_http_client_request failed; the call is freed when it returns. */
  void (*on_done)(tb_http_call_t *call, int err, void *ud);
} tb_http_call_cbs_t;

/** Creates a client on `loop`; `cfg` may be NULL (defaults) and is copied. */
int tb_http_client_new(uv_loop_t *loop, const tb_http_client_config_t *cfg, tb_http_client_t **out);

/**
 * Ends every call in flight (on_done gets TB_ECANCELED), closes pooled connections,
 * frees the client, then calls `on_closed(ud)` (may be NULL).
 */
void tb_http_client_close(tb_http_client_t *cl, void (*on_closed)(void *ud), void *ud);

/**
 * Sends a request: reuses an idle connection to the same host:port or unix socket, or
 * connects (names are resolved with getaddrinfo; numeric IPv4/IPv6, link-local with a
 * zone and ULA addresses are used as they are). A request that fails on a reused
 * connection before any response byte arrived is retried once on a new one when its
 * body can be sent again (none, or in memory). `rq` and `cbs` are copied; the URL and
 * headers are serialised at once. Returns 0 and the call in *out (may be NULL), or
 * TB_EINVAL (bad URL or header, with a sentence in `eb`) or TB_ENOMEM; then no callback
 * runs.
 */
int tb_http_client_request(tb_http_client_t *cl, const tb_http_request_t *rq, const tb_http_call_cbs_t *cbs,
                           void *ud, tb_http_call_t **out, tb_errbuf_t *eb);

/** Ends the call early: on_done runs later with TB_ECANCELED. No-op once done. */
void tb_http_call_cancel(tb_http_call_t *call);
/** Response backpressure: no on_data runs between read_stop and read_start. */
void tb_http_call_read_stop(tb_http_call_t *call);
void tb_http_call_read_start(tb_http_call_t *call);
/** The body source has bytes again after it returned TB_EAGAIN. */
void tb_http_call_body_ready(tb_http_call_t *call);
/** True when the call runs on a connection that served an earlier call. */
bool tb_http_call_reused(const tb_http_call_t *call);

#endif /* TB_HTTP_H */
