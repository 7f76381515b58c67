/*
 * workload.c — the deterministic event stream of workload.h.
 */
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SUPS = 8, TENANTS = 16, MAX_APPS = 4096, MAX_DEPS = 4 };

typedef struct wapp {
  tb_uuid_t id;
  int tenant;
  int versions;
  tb_uuid_t dep;      /* current deployment */
  int dep_state;      /* 0 none, 1 requested, 2 placed, 3 running, 4 ended */
  int dep_version;
  tb_uuid_t runner;
  int sup;
  int secrets;
} wapp_t;

struct wl {
  uint64_t rng;
  uint64_t n;
  tb_uuid_t sups[SUPS];
  int sups_registered;
  wapp_t apps[MAX_APPS];
  int n_apps;
  tb_uuid_t tokens[64];
  int n_tokens;
  char payload[1024];
  char actor[64];
  char type[40];
};

static uint64_t next(wl_t *w) {
  uint64_t x = w->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return w->rng = x;
}

static int pick(wl_t *w, int n) { return (int)(next(w) % (uint64_t)n); }

static void mkuuid(wl_t *w, tb_uuid_t *u) {
  uint64_t a = next(w), b = next(w);
  memcpy(u->b, &a, 8);
  memcpy(u->b + 8, &b, 8);
  u->b[6] = (uint8_t)(0x70 | (u->b[6] & 0x0f));
  u->b[8] = (uint8_t)(0x80 | (u->b[8] & 0x3f));
}

static void us(const tb_uuid_t *u, char out[TB_UUID_STR_LEN + 1]) { tb_uuid_format(u, out); }

wl_t *wl_new(uint64_t seed) {
  wl_t *w = calloc(1, sizeof *w);
  if (w) w->rng = seed ? seed * 0x9E3779B97F4A7C15ull : 88172645463325252ull;
  return w;
}

void wl_free(wl_t *w) { free(w); }

void wl_next(wl_t *w, tb_event_t *ev) {
  char a[TB_UUID_STR_LEN + 1], b[TB_UUID_STR_LEN + 1], c[TB_UUID_STR_LEN + 1], d[TB_UUID_STR_LEN + 1];
  memset(ev, 0, sizeof *ev);
  ev->schema = 1;
  ev->ts_ns = 1767225600000000000LL + (int64_t)w->n * 1000000LL;
  ev->actor = w->actor;
  ev->payload = w->payload;
  ev->type = w->type;
  w->n++;
  snprintf(w->actor, sizeof w->actor, "node");
  if (w->sups_registered < SUPS) {
    int s = w->sups_registered++;
    mkuuid(w, &w->sups[s]);
    us(&w->sups[s], a);
    snprintf(w->type, sizeof w->type, "supervisor_registered");
    snprintf(w->payload, sizeof w->payload,
             "{\"supervisor\":\"%s\",\"name\":\"sup-%d\",\"hostname\":\"host%d.example\",\"address\":"
             "\"fd5a:1f02:%04x::1\",\"tags\":[\"region-%d\",\"%s\"],\"runtimes\":[\"wasm-http\"%s],\"version\":\"0.1.0\"}",
             a, s, s, s, s % 3, s % 2 ? "gpu" : "cpu", s % 2 ? ",\"docker\"" : "");
    snprintf(w->actor, sizeof w->actor, "supervisor:%s", a);
    ev->aggregate = w->sups[s];
    goto done;
  }
  int r = pick(w, 1000);
  wapp_t *app = w->n_apps ? &w->apps[pick(w, w->n_apps)] : NULL;
  if (app == NULL || (r < 40 && w->n_apps < MAX_APPS)) {
    app = &w->apps[w->n_apps++];
    memset(app, 0, sizeof *app);
    mkuuid(w, &app->id);
    app->tenant = pick(w, TENANTS);
    us(&app->id, a);
    snprintf(w->type, sizeof w->type, "app_registered");
    snprintf(w->payload, sizeof w->payload,
             "{\"app\":\"%s\",\"tenant\":\"tenant-%d\",\"name\":\"app-%d\",\"runtime\":\"%s\"}", a, app->tenant,
             w->n_apps, w->n_apps % 3 ? "wasm-http" : "docker");
    snprintf(w->actor, sizeof w->actor, "user:tenant-%d", app->tenant);
    ev->aggregate = app->id;
    goto done;
  }
  us(&app->id, a);
  ev->aggregate = app->id;
  if (r < 100) {
    app->versions++;
    snprintf(w->type, sizeof w->type, "version_uploaded");
    snprintf(w->payload, sizeof w->payload,
             "{\"app\":\"%s\",\"version\":%d,\"digest\":\"blake3:%016llx%016llx\",\"size\":%d,\"artifact\":\"apps/%s/v%d/"
             "app.wasm\",\"runtime\":\"wasm-http\"}",
             a, app->versions, (unsigned long long)next(w), (unsigned long long)next(w), 1000 + pick(w, 1000000), a,
             app->versions);
    snprintf(w->actor, sizeof w->actor, "user:tenant-%d", app->tenant);
    goto done;
  }
  if (r < 150 && app->versions > 0 && (app->dep_state == 0 || app->dep_state >= 3)) {
    mkuuid(w, &app->dep);
    us(&app->dep, b);
    bool rollback = app->dep_state >= 3 && app->dep_version > 1 && pick(w, 5) == 0;
    int v = rollback ? app->dep_version - 1 : app->versions;
    if (rollback) {
      snprintf(w->type, sizeof w->type, "rollback_requested");
      snprintf(w->payload, sizeof w->payload,
               "{\"app\":\"%s\",\"deployment\":\"%s\",\"from_version\":%d,\"to_version\":%d,\"tags\":[\"region-%d\"]}", a,
               b, app->dep_version, v, pick(w, 3));
    } else {
      snprintf(w->type, sizeof w->type, "deploy_requested");
      snprintf(w->payload, sizeof w->payload,
               "{\"app\":\"%s\",\"deployment\":\"%s\",\"version\":%d,\"runtime\":\"wasm-http\",\"target\":\"sup-%d\","
               "\"tags\":[\"region-%d\"]}",
               a, b, v, pick(w, SUPS), pick(w, 3));
    }
    app->dep_version = v;
    app->dep_state = 1;
    snprintf(w->actor, sizeof w->actor, "user:tenant-%d", app->tenant);
    goto done;
  }
  if (r < 200 && app->dep_state == 1) {
    app->sup = pick(w, SUPS);
    app->dep_state = 2;
    us(&app->dep, b);
    us(&w->sups[app->sup], c);
    snprintf(w->type, sizeof w->type, "deployment_placed");
    snprintf(w->payload, sizeof w->payload, "{\"app\":\"%s\",\"deployment\":\"%s\",\"supervisor\":\"%s\"}", a, b, c);
    goto done;
  }
  if (r < 250 && app->dep_state == 2) {
    mkuuid(w, &app->runner);
    us(&app->dep, b);
    us(&w->sups[app->sup], c);
    us(&app->runner, d);
    snprintf(w->type, sizeof w->type, pick(w, 10) ? "app_started" : "runner_adopted");
    snprintf(w->payload, sizeof w->payload,
             "{\"app\":\"%s\",\"deployment\":\"%s\",\"supervisor\":\"%s\",\"runner\":\"%s\",\"address\":"
             "\"[fd5a:1f02:%02x%02x:%02x%02x::1]:8730\",\"pid\":%d}",
             a, b, c, d, app->id.b[0], app->id.b[1], app->id.b[2], app->id.b[3], 1000 + pick(w, 60000));
    snprintf(w->actor, sizeof w->actor, "supervisor:%s", c);
    app->dep_state = 3;
    goto done;
  }
  if (r < 270 && app->dep_state == 3) {
    us(&app->runner, d);
    us(&w->sups[app->sup], c);
    if (pick(w, 2)) {
      snprintf(w->type, sizeof w->type, "app_crashed");
      snprintf(w->payload, sizeof w->payload,
               "{\"app\":\"%s\",\"runner\":\"%s\",\"supervisor\":\"%s\",\"exit_code\":%d,\"reason\":\"exited with status "
               "%d\"}",
               a, d, c, 1 + pick(w, 3), 1 + pick(w, 3));
    } else {
      snprintf(w->type, sizeof w->type, "runner_exited");
      snprintf(w->payload, sizeof w->payload, "{\"app\":\"%s\",\"runner\":\"%s\",\"supervisor\":\"%s\",\"signal\":15}",
               a, d, c);
    }
    snprintf(w->actor, sizeof w->actor, "supervisor:%s", c);
    app->dep_state = 4;
    goto done;
  }
  if (r < 280 && app->dep_state >= 1) {
    snprintf(w->type, sizeof w->type, "app_stopped");
    snprintf(w->payload, sizeof w->payload, "{\"app\":\"%s\",\"reason\":\"requested by user\"}", a);
    snprintf(w->actor, sizeof w->actor, "user:tenant-%d", app->tenant);
    goto done;
  }
  if (r < 300) {
    char ct[100];
    for (int i = 0; i < 60; i++) ct[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[pick(w, 64)];
    ct[60] = '\0';
    int name = pick(w, 4);
    if (app->secrets & (1 << name) && pick(w, 4) == 0) {
      snprintf(w->type, sizeof w->type, "secret_removed");
      snprintf(w->payload, sizeof w->payload, "{\"app\":\"%s\",\"name\":\"SECRET_%d\"}", a, name);
      app->secrets &= ~(1 << name);
    } else {
      snprintf(w->type, sizeof w->type, "secret_registered");
      snprintf(w->payload, sizeof w->payload,
               "{\"app\":\"%s\",\"name\":\"SECRET_%d\",\"alg\":\"xchacha20poly1305-ietf\",\"key_id\":\"0123456789abcdef\","
               "\"nonce\":\"%.32s\",\"ciphertext\":\"%s\"}",
               a, name, ct + 10, ct);
      app->secrets |= 1 << name;
    }
    snprintf(w->actor, sizeof w->actor, "user:tenant-%d", app->tenant);
    goto done;
  }
  if (r < 310) {
    if (w->n_tokens < 64 && (w->n_tokens == 0 || pick(w, 2))) {
      tb_uuid_t *t = &w->tokens[w->n_tokens++];
      mkuuid(w, t);
      us(t, b);
      snprintf(w->type, sizeof w->type, "token_issued");
      snprintf(w->payload, sizeof w->payload,
               "{\"token\":\"%s\",\"tenant\":\"tenant-%d\",\"subject\":\"user-%d\",\"scopes\":[\"apps:read\",\"apps:write\"],"
               "\"expires_at\":%lld}",
               b, pick(w, TENANTS), pick(w, 100), (long long)ev->ts_ns + 86400000000000LL);
      ev->aggregate = *t;
    } else {
      tb_uuid_t *t = &w->tokens[pick(w, w->n_tokens)];
      us(t, b);
      snprintf(w->type, sizeof w->type, "token_revoked");
      snprintf(w->payload, sizeof w->payload, "{\"token\":\"%s\",\"reason\":\"rotated\"}", b);
      ev->aggregate = *t;
    }
    goto done;
  }
  if (r < 320) {
    snprintf(w->type, sizeof w->type, "debug_note");
    snprintf(w->payload, sizeof w->payload, "{\"note\":\"an event type the projections do not know\",\"n\":%llu}",
             (unsigned long long)w->n);
    goto done;
  }
  /* Most of a long-lived log: heartbeats. */
  int s = pick(w, SUPS);
  us(&w->sups[s], c);
  snprintf(w->type, sizeof w->type, "supervisor_heartbeat");
  snprintf(w->payload, sizeof w->payload, "{\"supervisor\":\"%s\",\"runners\":%d,\"cpu_milli\":%d,\"mem_free_mb\":%d}",
           c, pick(w, 200), pick(w, 8000), 512 + pick(w, 60000));
  snprintf(w->actor, sizeof w->actor, "supervisor:%s", c);
  ev->aggregate = w->sups[s];
done:
  ev->payload_len = strlen(w->payload);
}
