/*
 * app.c — a WAGI app: one module compiled once per app version, its limits and
 * environment, and the watchdog thread that interrupts requests past their deadline.
 *
 * The watchdog is one thread per app (not one per request): serve() registers its store
 * with a deadline, the thread sleeps on a monotonic condition variable until the earliest
 * one and calls tb_wasm_store_interrupt, which is safe from any thread. Registration and
 * interruption happen under one mutex, so once serve() has unregistered, the store may be
 * freed without the watchdog ever touching it again.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tb/alloc.h"
#include "tb/clock.h"
#include "tb/wasi.h"
#include "wagi_int.h"

void tb__wagi_logf(tb_wagi_app_t *app, const char *fmt, ...) {
  char line[512];
  va_list ap;
  int n;
  if (!app->log) return;
  n = snprintf(line, sizeof line, "%s: ", app->name);
  if (n < 0 || (size_t)n >= sizeof line) n = 0;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  app->log(app->log_arg, TB_WAGI_LOG_RUNTIME, line, strlen(line));
}

static void *watchdog(void *arg) {
  tb_wagi_app_t *app = arg;
  pthread_mutex_lock(&app->mu);
  while (!app->stop) {
    int64_t now = tb_clock_mono_ns(), next = INT64_MAX;
    for (tb__wagi_watch_t *w = app->watches; w; w = w->next) {
      if (w->fired) continue;
      if (w->deadline_ns <= now) {
        tb_wasm_store_interrupt(w->store);
        w->fired = true;
      } else if (w->deadline_ns < next) {
        next = w->deadline_ns;
      }
    }
    if (next == INT64_MAX) {
      pthread_cond_wait(&app->cv, &app->mu);
    } else {
      struct timespec ts = {.tv_sec = (time_t)(next / TB_NS_PER_SEC), .tv_nsec = (long)(next % TB_NS_PER_SEC)};
      pthread_cond_timedwait(&app->cv, &app->mu, &ts);
    }
  }
  pthread_mutex_unlock(&app->mu);
  return NULL;
}

void tb__wagi_watch_add(tb_wagi_app_t *app, tb__wagi_watch_t *w) {
  pthread_mutex_lock(&app->mu);
  w->fired = false;
  w->prev = NULL;
  w->next = app->watches;
  if (app->watches) app->watches->prev = w;
  app->watches = w;
  pthread_cond_signal(&app->cv);
  pthread_mutex_unlock(&app->mu);
}

bool tb__wagi_watch_remove(tb_wagi_app_t *app, tb__wagi_watch_t *w) {
  bool fired;
  pthread_mutex_lock(&app->mu);
  if (w->prev) w->prev->next = w->next;
  else app->watches = w->next;
  if (w->next) w->next->prev = w->prev;
  fired = w->fired;
  pthread_mutex_unlock(&app->mu);
  return fired;
}

/* A command module that imports nothing but WASI: what serve() can run. */
static int check_command(const tb_wasm_module_t *m, tb_errbuf_t *eb) {
  bool has_start = false;
  tb_wasm_port_t p;
  for (size_t i = 0; i < tb_wasm_module_import_count(m); i++) {
    if (tb_wasm_module_import(m, i, &p) != 0) return TB_EINTERNAL;
    if (p.module_len != strlen(TB_WASI_MODULE) || memcmp(p.module, TB_WASI_MODULE, p.module_len) != 0)
      return tb_errf(eb, TB_EINVAL, "import \"%.*s\" \"%.*s\": a WAGI app may import only from %s",
                     (int)p.module_len, p.module, (int)p.name_len, p.name, TB_WASI_MODULE);
  }
  for (size_t i = 0; i < tb_wasm_module_export_count(m); i++) {
    if (tb_wasm_module_export(m, i, &p) != 0) return TB_EINTERNAL;
    if (p.type.kind == TB_WASM_EXTERN_FUNC && p.name_len == 6 && memcmp(p.name, "_start", 6) == 0 &&
        p.type.func.nparams == 0 && p.type.func.nresults == 0)
      has_start = true;
  }
  if (!has_start) return tb_errf(eb, TB_EINVAL, "not a WASI command: no exported function _start of type () -> ()");
  return 0;
}

int tb_wagi_app_new(tb_wasm_engine_t *engine, const uint8_t *bytes, size_t len, const tb_wagi_config_t *cfg,
                    tb_wagi_app_t **out, tb_errbuf_t *eb) {
  tb_wagi_app_t *app = NULL;
  int rc;
  *out = NULL;
  if (!engine || !bytes || !cfg) return TB_EINVAL;
  if (cfg->memory_mb > 65536) return tb_errf(eb, TB_EINVAL, "memory limit of %u MiB is past wasm32's 4 GiB", cfg->memory_mb);
  app = tb_calloc(1, sizeof *app);
  if (!app) return TB_ENOMEM;
  pthread_mutex_init(&app->mu, NULL);
  {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&app->cv, &ca);
    pthread_condattr_destroy(&ca);
  }
  app->engine = engine;
  app->memory_pages = cfg->memory_mb * 16u;
  app->deadline_ms = cfg->deadline_ms;
  app->max_header_bytes = cfg->max_header_bytes ? cfg->max_header_bytes : 64 * 1024;
  app->log = cfg->log;
  app->log_arg = cfg->log_arg;
  app->name = tb_strdup(cfg->name ? cfg->name : "app");
  if (!app->name) { rc = TB_ENOMEM; goto out; }
  if (cfg->nenv) {
    app->env = tb_calloc(cfg->nenv, sizeof *app->env);
    if (!app->env) { rc = TB_ENOMEM; goto out; }
    for (size_t i = 0; i < cfg->nenv; i++) {
      const char *eq = strchr(cfg->env[i], '=');
      if (!eq || eq == cfg->env[i]) {
        rc = tb_errf(eb, TB_EINVAL, "environment entry %zu is not KEY=VALUE", i);
        goto out;
      }
      app->env[i] = tb_strdup(cfg->env[i]);
      if (!app->env[i]) { rc = TB_ENOMEM; goto out; }
      app->nenv = i + 1;
    }
  }
  rc = tb_wasm_module_new(engine, bytes, len, &app->module, eb);
  if (rc != 0) goto out;
  rc = check_command(app->module, eb);
  if (rc != 0) goto out;
  if (app->deadline_ms) {
    if (pthread_create(&app->thread, NULL, watchdog, app) != 0) { rc = TB_ENOMEM; goto out; }
    app->thread_started = true;
  }
  *out = app;
  app = NULL;
out:
  tb_wagi_app_free(app);
  return rc;
}

void tb_wagi_app_free(tb_wagi_app_t *app) {
  if (!app) return;
  if (app->thread_started) {
    pthread_mutex_lock(&app->mu);
    app->stop = true;
    pthread_cond_signal(&app->cv);
    pthread_mutex_unlock(&app->mu);
    pthread_join(app->thread, NULL);
  }
  pthread_cond_destroy(&app->cv);
  pthread_mutex_destroy(&app->mu);
  tb_wasm_module_free(app->module);
  for (size_t i = 0; i < app->nenv; i++) tb_free(app->env[i]);
  tb_free(app->env);
  tb_free(app->name);
  tb_free(app);
}

const tb_wasm_module_t *tb_wagi_app_module(const tb_wagi_app_t *app) { return app->module; }
