/*
 * runner_int.h — what the files of lib/runner share: the backend interface, the app log
 * and the exchange bridge between the loop thread and the worker pool.
 *
 *   runner.c     the program: spec, setup, the HTTP front and control socket on the loop,
 *                lifecycle (signals, POST /stop, idle), readiness
 *   exchange.c   one HTTP exchange handed from the loop to a worker and back: bounded
 *                body buffers both ways, the worker pool, the loop's wake-up list
 *   applog.c     the app's log file: one write(2) per line
 *   spec.c       the spec file and the digest check
 *   wasm_http.c  the wasm-http backend (lib/wagi)
 *
 * A backend runs requests on worker threads. Its request and response types are the
 * CGI-shaped ones of include/tb/wagi.h (method, path, query, headers; head and body
 * callbacks), which any runtime behind an HTTP front can take: a docker or firecracker
 * backend would forward the same request to its VM over HTTP from the worker.
 */
#ifndef TB_RUNNER_INT_H
#define TB_RUNNER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "tb/buf.h"
#include "tb/http.h"
#include "tb/runner.h"
#include "tb/wagi.h"

/* ---- Backends ---- */

typedef struct tb__runner_backend {
  const char *runtime; /* the spec's "runtime" */
  bool reads_artifact; /* start gets no bytes: it opens spec->artifact itself (images of any size)
                        * and checks it against spec->digest (tb_runner_digest_check_file) */
  uint32_t workers;    /* workers when the spec names none; 0: the CPUs (compute-bound backends) */
  /** Loads the artifact (`bytes`, borrowed for the call) for `spec` (borrowed; outlives the
   *  backend). Log lines go to `log(log_arg, ...)` from any thread. Main thread. */
  int (*start)(const tb_runner_spec_t *spec, const uint8_t *bytes, size_t len, tb_wagi_log_fn log, void *log_arg,
               void **state, tb_errbuf_t *eb);
  /** Serves one request on a worker thread, the contract of tb_wagi_serve. Thread-safe. */
  int (*serve)(void *state, const tb_wagi_request_t *req, const tb_wagi_io_t *io, tb_wagi_result_t *res);
  /** Frees the backend once no request runs. NULL state is fine. */
  void (*stop)(void *state);
} tb__runner_backend_t;

extern const tb__runner_backend_t tb__runner_wasm_http;
extern const tb__runner_backend_t tb__runner_docker;

/**
 * The app died under its backend (its container exited, was killed for memory): any
 * thread, any time after start began. The runner writes `reason` to exit.json beside its
 * control socket, logs it, and stops at once with TB_RUNNER_EXIT_APP_DIED.
 */
void tb__runner_app_died(const char *reason);

/** The backend for `runtime`, or NULL. */
const tb__runner_backend_t *tb__runner_backend_find(const char *runtime);

/* ---- Forwarding to the app's own HTTP server (forward.c) ---- */

typedef struct tb__fwd tb__fwd_t;

/** A forwarder to `address` ("10.213.0.5:8080", "[fd5a::1]:8080"): numeric IP and port.
 *  `timeout_ms` bounds the connect and every silence (0: 30 s). */
int tb__fwd_new(const char *address, uint32_t timeout_ms, tb__fwd_t **out, tb_errbuf_t *eb);
void tb__fwd_free(tb__fwd_t *f);
/** Serves one request on the calling worker thread, the contract of tb_wagi_serve. */
int tb__fwd_serve(tb__fwd_t *f, const tb_wagi_request_t *req, const tb_wagi_io_t *io, tb_wagi_result_t *res);

/* ---- The app log ---- */

typedef struct tb__applog {
  int fd; /* -1: lines go nowhere */
} tb__applog_t;

/** Opens (creates, appends) `path`, making its directories. Sentence in `eb`. */
int tb__applog_open(tb__applog_t *l, const char *path, tb_errbuf_t *eb);
void tb__applog_close(tb__applog_t *l);
/** Writes "<ts> <stream> <text>\n" with one write(2); newlines inside become spaces. */
void tb__applog_line(tb__applog_t *l, const char *stream, const char *text, size_t len);
void tb__applog_printf(tb__applog_t *l, const char *stream, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** tb_wagi_log_fn for a tb__applog_t: stderr split into lines (the partial last line is
 *  kept per thread until tb__applog_flush_thread), runtime lines as they are. */
void tb__applog_wagi(void *arg, tb_wagi_log_kind_t kind, const char *data, size_t len);
/** Writes the calling thread's partial stderr line, if any (end of a request). */
void tb__applog_flush_thread(tb__applog_t *l);

/* ---- Exchanges and the pool ---- */

typedef struct tb__runner_pool tb__runner_pool_t;

/** What the pool tells its owner on the loop thread. */
typedef struct tb__runner_pool_cbs {
  /** An exchange was released (both the HTTP side and the worker are done with it). */
  void (*on_released)(void *ud);
} tb__runner_pool_cbs_t;

typedef struct tb__runner_pool_config {
  uint32_t workers;
  size_t max_queued;
  uint32_t request_timeout_ms; /* bounds a worker's wait for request body bytes */
  const tb__runner_backend_t *backend;
  void *backend_state;
  tb__applog_t *log;
  tb__runner_pool_cbs_t cbs;
  void *ud;
} tb__runner_pool_config_t;

/** Starts the workers and the loop's wake-up handle on `loop`. Loop thread. */
int tb__runner_pool_new(uv_loop_t *loop, const tb__runner_pool_config_t *cfg, tb__runner_pool_t **out);
/**
 * Takes `req` (from the data server's handler): queues it for a worker, or answers 503
 * when the queue is full. Loop thread.
 */
void tb__runner_pool_submit(tb__runner_pool_t *p, tb_http_req_t *req);
/** Exchanges submitted and not yet released. */
size_t tb__runner_pool_inflight(const tb__runner_pool_t *p);
/** Stops the workers (after the ones running finish), closes the handle, frees. Only
 *  once inflight is 0. `on_closed` runs from the loop. */
void tb__runner_pool_free(tb__runner_pool_t *p, void (*on_closed)(void *ud), void *ud);

#endif /* TB_RUNNER_INT_H */
