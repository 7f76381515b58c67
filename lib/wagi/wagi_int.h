/*
 * wagi_int.h — what app.c (apps and the deadline watchdog) and serve.c (one request)
 * share inside lib/wagi.
 */
#ifndef TB_WAGI_INT_H
#define TB_WAGI_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "tb/wagi.h"

/* One running request the watchdog knows about. Owned by serve(), on its stack. */
typedef struct tb__wagi_watch {
  struct tb__wagi_watch *prev, *next;
  tb_wasm_store_t *store;
  int64_t deadline_ns; /* monotonic */
  bool fired;          /* the watchdog interrupted the store */
} tb__wagi_watch_t;

struct tb_wagi_app {
  tb_wasm_engine_t *engine; /* borrowed */
  tb_wasm_module_t *module; /* owned: compiled once */
  uint32_t memory_pages;    /* 0: the engine's cap */
  uint32_t deadline_ms;
  size_t max_header_bytes;
  char **env;               /* "KEY=VALUE", owned */
  size_t nenv;
  char *name;
  tb_wagi_log_fn log;
  void *log_arg;

  /* The watchdog: a thread that sleeps until the earliest deadline among `watches`. */
  pthread_mutex_t mu;
  pthread_cond_t cv; /* on CLOCK_MONOTONIC */
  pthread_t thread;
  bool thread_started, stop;
  tb__wagi_watch_t *watches;
};

/** Registers `w` (its store and deadline set) with the app's watchdog. */
void tb__wagi_watch_add(tb_wagi_app_t *app, tb__wagi_watch_t *w);
/** Unregisters `w`; after it returns the watchdog no longer touches w->store. Returns w->fired. */
bool tb__wagi_watch_remove(tb_wagi_app_t *app, tb__wagi_watch_t *w);
/** Formats one runtime line and hands it to the app's log sink. */
void tb__wagi_logf(tb_wagi_app_t *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
