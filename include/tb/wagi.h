/*
 * wagi.h — the wasm-http runtime: one HTTP request served by a WASI preview 1 module,
 * the WAGI way (CGI/1.1 on WebAssembly).
 *
 * The request line and headers reach the guest as CGI environment variables, the body
 * on its stdin; the guest answers on stdout with CGI headers (`Status:`, `Location:`,
 * `Content-Type:`, ...), a blank line, then the body. The runner calls this library from
 * its worker threads:
 *
 *   app      one per app version: the module decoded, validated and compiled once, plus
 *            the limits (memory, deadline) and the manifest's environment. Read-only
 *            once made, so any number of threads may serve requests on it at once.
 *   serve    one request, synchronously on the calling thread, in a fresh store and
 *            instance (requests never see each other's memory). The body is streamed
 *            through the caller's callbacks in both directions, never buffered whole.
 *
 * A shared watchdog thread per app interrupts a request's store when its deadline
 * passes. docs/internals/WAGI.md has the CGI mapping and the error statuses.
 *
 * Errors follow include/tb/err.h: 0 or a negative TB_E* code, with a sentence in the
 * optional tb_errbuf_t.
 */
#ifndef TB_WAGI_H
#define TB_WAGI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/err.h"
#include "tb/wasm.h"

typedef struct tb_wagi_app tb_wagi_app_t;

/* What a log line is about. */
typedef enum tb_wagi_log_kind {
  TB_WAGI_LOG_STDERR = 0, /* bytes the guest wrote to its stderr, as written (not line-split) */
  TB_WAGI_LOG_RUNTIME,    /* one line from the runtime: trap, deadline, malformed response */
} tb_wagi_log_kind_t;

/**
 * The app's log sink. `data` (borrowed for the call, not NUL-terminated) is `len` bytes.
 * Called on the thread running the request, so concurrent requests call it concurrently:
 * it must be thread-safe. It must not call back into the library.
 */
typedef void (*tb_wagi_log_fn)(void *arg, tb_wagi_log_kind_t kind, const char *data, size_t len);

typedef struct tb_wagi_config {
  uint32_t memory_mb;        /* cap on the guest's linear memory; 0: the engine's (4 GiB) */
  uint32_t deadline_ms;      /* per request, instantiation included; 0: none */
  size_t max_header_bytes;   /* the guest's CGI header block; 0: 64 KiB */
  const char *const *env;    /* the manifest's variables, "KEY=VALUE" each (copied) */
  size_t nenv;
  const char *name;          /* argv[0] of the guest and the name in log lines; NULL: "app" */
  tb_wagi_log_fn log;        /* may be NULL: guest stderr and runtime lines are dropped */
  void *log_arg;             /* not owned; must outlive the app */
} tb_wagi_config_t;

/**
 * Compiles `len` bytes of a module (copied) into a new app using `engine` (borrowed: it
 * must outlive the app) and starts the app's watchdog thread. The module must be a WASI
 * command (export `_start`, import only wasi_snapshot_preview1): TB_EINVAL otherwise.
 * Malformed or invalid modules are TB_EPARSE/TB_EINVAL with the engine's sentence in `eb`.
 * `cfg` is copied. Free with tb_wagi_app_free.
 */
int tb_wagi_app_new(tb_wasm_engine_t *engine, const uint8_t *bytes, size_t len, const tb_wagi_config_t *cfg,
                    tb_wagi_app_t **out, tb_errbuf_t *eb);
/** Stops the watchdog and frees the app. No request may still be running on it. NULL is fine. */
void tb_wagi_app_free(tb_wagi_app_t *app);

/* A header: two NUL-terminated strings. */
typedef struct tb_wagi_header {
  const char *name;
  const char *value;
} tb_wagi_header_t;

/*
 * One request, as the runner's HTTP layer parsed and routed it. Every string is borrowed
 * for the call; NULL means empty (or, for the optional ones, absent).
 */
typedef struct tb_wagi_request {
  const char *method;       /* "GET" */
  const char *path;         /* the request path, still percent-encoded, without the query */
  const char *query;        /* after '?', without it; NULL or "" when there was none */
  const char *script_name;  /* the route's fixed prefix ("" when the app owns "/"): SCRIPT_NAME */
  const char *matched_route;/* the route pattern as the manifest wrote it ("/..."): X_MATCHED_ROUTE */
  const char *protocol;     /* "HTTP/1.1" */
  const char *remote_addr;  /* the client's address, "127.0.0.1" */
  const char *server_name;  /* the Host the request named, without port */
  const char *server_port;  /* "8080" */
  const char *full_url;     /* "http://host:port/path?query": X_FULL_URL */
  int64_t content_length;   /* -1 when not known (chunked): CONTENT_LENGTH is then omitted */
  const tb_wagi_header_t *headers; /* the request headers, names in any case */
  size_t nheaders;
} tb_wagi_request_t;

/*
 * Where the request body comes from and the response goes. Called synchronously on the
 * serving thread. A negative return from any of them is an error that ends the request.
 */
typedef struct tb_wagi_io {
  /** Up to `len` bytes of the request body into `buf`; 0 at its end. NULL: an empty body. */
  int64_t (*read_body)(void *arg, uint8_t *buf, size_t len);
  /** The response head, called at most once, before any write_body. `headers` (borrowed for
   *  the call) never holds Status; reason is the status line's phrase. */
  int (*write_head)(void *arg, int status, const char *reason, const tb_wagi_header_t *headers, size_t n);
  /** `len` bytes of the response body, as the guest wrote them. */
  int (*write_body)(void *arg, const uint8_t *data, size_t len);
  void *arg;
} tb_wagi_io_t;

typedef struct tb_wagi_result {
  int status;              /* the status sent (the guest's, or the one the library chose) */
  bool head_sent;          /* write_head was called */
  bool truncated;          /* the head was sent but the body is incomplete: abort the connection */
  bool timed_out;          /* the deadline passed */
  int exit_code;           /* the guest's proc_exit code, 0 when _start returned */
  tb_wasm_trap_t trap;     /* kind TB_WASM_TRAP_NONE unless it trapped */
  uint64_t body_in;        /* request body bytes handed to the guest */
  uint64_t body_out;       /* response body bytes passed to write_body */
  size_t peak_held;        /* most bytes the library held for this request (the header block) */
  int64_t instantiate_ns;  /* fresh store + WASI context + instance */
  int64_t run_ns;          /* _start until it returned, exited or trapped */
  char error[200];         /* why the library chose an error status, or "" */
} tb_wagi_result_t;

/**
 * Serves one request on the calling thread: a fresh store and WASI context with the CGI
 * environment of `req`, the memory cap and deadline of the app, stdin fed from
 * io->read_body, stdout parsed as a CGI response and streamed to io->write_head/_body as
 * the guest writes it, stderr to the app's log. *res is always filled.
 *
 * Statuses the library chooses (see docs/internals/WAGI.md): 500 when the guest traps,
 * runs past its deadline or exits non-zero before its headers were complete; 502 when it
 * ends without a complete, well-formed header block (or one larger than
 * max_header_bytes). Those are sent through `io` with a short text body.
 *
 * Returns 0 when a whole response (the guest's, or the library's own error response,
 * which is also what a request that could not be set up gets: 500) went through `io`;
 * TB_ETRAP when the guest failed after the head was sent (res->truncated: abort the
 * connection); the io callback's negative value when one failed (the client is gone;
 * res->head_sent says how far it got). The deadline is not enforced while the guest is
 * blocked inside io->read_body: the caller bounds its own reads.
 * TB_EINVAL, with nothing sent, when `io` lacks write_head or write_body.
 * Thread-safe: concurrent calls on one app are fine.
 */
int tb_wagi_serve(tb_wagi_app_t *app, const tb_wagi_request_t *req, const tb_wagi_io_t *io, tb_wagi_result_t *res);

/** The compiled module (borrowed from the app). */
const tb_wasm_module_t *tb_wagi_app_module(const tb_wagi_app_t *app);

#endif /* TB_WAGI_H */
