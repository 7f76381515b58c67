/*
 * tabbify-node — the node's program: parse flags, start lib/node on a libuv loop, stop on
 * SIGINT/SIGTERM. Everything else is lib/node (include/tb/node.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb/node.h"

static void usage(FILE *f) {
  fputs("usage: tabbify-node --state-dir DIR [--listen ADDR] [--store-dir DIR] [--key-file FILE]\n"
        "                    [--max-artifact-bytes N] [--dial-timeout-ms N] [--proxy-timeout-ms N]\n"
        "                    [--wake-timeout-ms N] [--supervisor-lost-ms N] [--supervisor NAME:tag,tag]...\n"
        "Serves REST API v1 (docs/internals/NODE.md). The signing key is created (0600) at first start.\n",
        f);
}

static uv_signal_t sigint, sigterm;

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  tb_node_t *node = s->data;
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  tb_node_close(node, NULL, NULL);
}

int main(int argc, char **argv) {
  tb_node_config_t cfg = {0};
  const char *sups[16];
  int nsups = 0;
  for (int i = 1; i < argc; i += 2) { /* every option takes a value */
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (!v) {
      fprintf(stderr, "tabbify-node: %s needs a value (or is unknown).\n", a);
      return 2;
    }
    if (strcmp(a, "--state-dir") == 0) cfg.state_dir = v;
    else if (strcmp(a, "--listen") == 0) cfg.listen = v;
    else if (strcmp(a, "--store-dir") == 0) cfg.store_dir = v;
    else if (strcmp(a, "--key-file") == 0) cfg.key_file = v;
    else if (strcmp(a, "--max-artifact-bytes") == 0 || strcmp(a, "--dial-timeout-ms") == 0 ||
             strcmp(a, "--proxy-timeout-ms") == 0 || strcmp(a, "--wake-timeout-ms") == 0 ||
             strcmp(a, "--supervisor-lost-ms") == 0) {
      char *end;
      errno = 0;
      unsigned long long n = strtoull(v, &end, 10);
      if (errno || *end || n == 0 || v[0] == '-') {
        fprintf(stderr, "tabbify-node: %s must be a positive number, not \"%s\".\n", a, v);
        return 2;
      }
      if (a[2] == 'm') cfg.max_artifact_bytes = n;
      else if (a[2] == 'd') cfg.dial_timeout_ms = n;
      else if (a[2] == 'p') cfg.proxy_timeout_ms = n;
      else if (a[2] == 's') cfg.supervisor_lost_ms = n;
      else cfg.wake_timeout_ms = n;
    } else if (strcmp(a, "--supervisor") == 0) {
      if (nsups == 16 || !strchr(v, ':')) {
        fprintf(stderr, "tabbify-node: --supervisor takes NAME:tag,tag (at most 16), not \"%s\".\n", v);
        return 2;
      }
      sups[nsups++] = v;
    } else {
      fprintf(stderr, "tabbify-node: unknown option %s.\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!cfg.state_dir) {
    fprintf(stderr, "tabbify-node: --state-dir is required.\n");
    return 2;
  }
  uv_loop_t *loop = uv_default_loop();
  tb_node_t *node = NULL;
  char msg[512] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  int rc = tb_node_new(loop, &cfg, &node, &eb);
  if (rc != 0) {
    fprintf(stderr, "tabbify-node: %s.\n", msg[0] ? msg : tb_strerror(rc));
    return 1;
  }
  for (int i = 0; i < nsups; i++) {
    char name[256];
    const char *colon = strchr(sups[i], ':');
    snprintf(name, sizeof name, "%.*s", (int)(colon - sups[i]), sups[i]);
    if ((rc = tb_node_register_supervisor(node, name, colon + 1, &eb)) != 0) {
      fprintf(stderr, "tabbify-node: cannot register supervisor %s: %s.\n", name, msg[0] ? msg : tb_strerror(rc));
      return 1;
    }
  }
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  sigint.data = sigterm.data = node;
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  printf("tabbify-node listening on port %d\n", tb_node_port(node));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
