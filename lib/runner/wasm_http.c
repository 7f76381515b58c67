/*
 * wasm_http.c — the wasm-http backend: the artifact is a WASI preview 1 command module,
 * compiled once at start (lib/wagi), and every request runs in a fresh instance on the
 * worker thread that took it. The spec's memory_mb caps the linear memory,
 * request_timeout_sec is the per-request deadline, env and name become the guest's
 * environment and argv[0]. ("args" has no meaning for a WAGI guest and is ignored.)
 */
#include <string.h>

#include "runner_int.h"
#include "tb/alloc.h"

typedef struct wasm_http {
  tb_wasm_engine_t *engine;
  tb_wagi_app_t *app;
} wasm_http_t;

static void wh_stop(void *state) {
  wasm_http_t *w = state;
  if (w == NULL) return;
  tb_wagi_app_free(w->app);
  tb_wasm_engine_free(w->engine);
  tb_free(w);
}

static int wh_start(const tb_runner_spec_t *spec, const uint8_t *bytes, size_t len, tb_wagi_log_fn log,
                    void *log_arg, void **state, tb_errbuf_t *eb) {
  char ebuf[256] = "";
  tb_errbuf_t web = {ebuf, sizeof ebuf};
  wasm_http_t *w = tb_calloc(1, sizeof *w);
  int rc;
  if (w == NULL) return TB_ENOMEM;
  rc = tb_wasm_engine_new(NULL, &w->engine);
  if (rc != 0) {
    rc = tb_errf(eb, rc, "cannot create the wasm engine: %s", tb_strerror(rc));
    goto out;
  }
  tb_wagi_config_t cfg = {
      .memory_mb = spec->memory_mb,
      .deadline_ms = spec->request_timeout_sec * 1000u,
      .env = (const char *const *)spec->env,
      .nenv = spec->nenv,
      .name = spec->name,
      .log = log,
      .log_arg = log_arg,
  };
  rc = tb_wagi_app_new(w->engine, bytes, len, &cfg, &w->app, &web);
  if (rc != 0)
    rc = tb_errf(eb, rc, "the artifact %s is not a valid WASI module for wasm-http: %s", spec->artifact,
                 ebuf[0] ? ebuf : tb_strerror(rc));
out:
  if (rc != 0) {
    wh_stop(w);
    return rc;
  }
  *state = w;
  return 0;
}

static int wh_serve(void *state, const tb_wagi_request_t *req, const tb_wagi_io_t *io, tb_wagi_result_t *res) {
  wasm_http_t *w = state;
  return tb_wagi_serve(w->app, req, io, res);
}

const tb__runner_backend_t tb__runner_wasm_http = {
    .runtime = "wasm-http",
    .start = wh_start,
    .serve = wh_serve,
    .stop = wh_stop,
};

const tb__runner_backend_t *tb__runner_backend_find(const char *runtime) {
  static const tb__runner_backend_t *const all[] = {&tb__runner_wasm_http, &tb__runner_docker};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (strcmp(all[i]->runtime, runtime) == 0) return all[i];
  return NULL;
}
