/*
 * runner.h — tabbify-runner: the process that runs ONE app (one deployment), started by
 * the supervisor (lib/supervisor). This header is the contract between the two.
 *
 * Invocation: `tabbify-runner --spec FILE` (also `--help`, `--version`). FILE is JSON
 * written by the supervisor:
 *
 *   {"runner":"<uuid>","app":"<uuid>","deployment":"<uuid>","version":3,"supervisor":"<uuid>",
 *    "name":"hello","runtime":"wasm-http","artifact":"/abs/path/artifact","digest":"sha256:<hex>",
 *    "listen":"127.0.0.1:0","control":"/abs/dir/control.sock","log":"/abs/state/logs/<app>.log",
 *    "lifecycle":"always_on"|"on_request","idle_timeout_sec":300,"memory_mb":256,
 *    "request_timeout_sec":30,"env":{"KEY":"VALUE"},"args":["a"],"workers":0,
 *    "port":8080,"health_path":"/healthz","docker_socket":"/var/run/docker.sock"}
 *
 * Required: runner, app, artifact, listen, control, log. The others default to the
 * manifest's defaults (TB_MANIFEST_DEFAULT_*), also when given as 0 (idle_timeout_sec,
 * memory_mb, request_timeout_sec); workers 0 means the number of online CPUs,
 * at least 2, at most TB_RUNNER_MAX_WORKERS. Unknown fields are ignored (the supervisor
 * may add some). runtime is "wasm-http" or "docker"; port, health_path and docker_socket
 * matter only to docker (the app's own HTTP server in a container). digest is
 * "sha256:<64 hex>" or "blake3:<64 hex>"; the artifact must match it.
 *
 * Readiness: when the environment variable TABBIFY_READY_FD names an open fd, the runner
 * writes exactly one line to it and closes it:
 *   {"address":"127.0.0.1:PORT","pid":N,"runner":"<uuid>"}\n   once the data listener
 *                                                             and the control socket listen;
 *   {"error":"<sentence>"}\n                                   on a setup error (bad spec,
 *       unreadable artifact, digest mismatch, invalid module, cannot listen); the sentence
 *       also goes to stderr and the exit code is TB_RUNNER_EXIT_SETUP.
 * Without TABBIFY_READY_FD it prints "tabbify-runner listening on ADDRESS" on stdout.
 *
 * Exit codes: 0 stopped when asked (SIGTERM, SIGINT, POST /stop on the control socket),
 * TB_RUNNER_EXIT_SETUP, TB_RUNNER_EXIT_IDLE (on_request app idle for idle_timeout_sec).
 * Anything else, or death by a signal, is a crash. A runner that ends because its app
 * died under it (a container killed for memory, a VM that stopped) exits with
 * TB_RUNNER_EXIT_APP_DIED after writing {"reason":"<sentence>"} to exit.json in the
 * directory of its control socket; the supervisor puts that sentence in app_crashed.
 *
 * Data listener (`listen`): every request is the app's; the target is passed as it is.
 * HTTP/1.1 keep-alive. Control endpoint: HTTP on the unix socket `control`:
 *   GET /status  200 {"runner","app","deployment","version","pid","address","runtime",
 *                     "lifecycle","state":"running"|"draining","inflight","requests",
 *                     "started_at_ns","idle_ms"}
 *   GET /health  200 {"status":"ok"}
 *   POST /stop   202 {"state":"draining"}, then a graceful stop
 * Graceful stop: stop accepting, let requests in flight finish (TB_RUNNER_GRACE_MS, then
 * they are cut), remove the control socket, exit.
 *
 * Log file (`log`, opened O_APPEND, directories created): one write(2) per line,
 *   "<RFC 3339 UTC with ms> <stream> <text>\n", stream one of stderr (the guest's stderr,
 *   split into lines), runtime (trap, deadline, malformed response), runner (lifecycle,
 *   and one line per request answered with a status >= 500).
 *
 * docs/internals/RUNNER.md has the design (threads, backpressure, lifecycle).
 */
#ifndef TB_RUNNER_H
#define TB_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/err.h"

#define TB_RUNNER_EXIT_OK 0
#define TB_RUNNER_EXIT_SETUP 2
#define TB_RUNNER_EXIT_IDLE 10
#define TB_RUNNER_EXIT_APP_DIED 11

/** The environment variable naming the readiness fd. */
#define TB_RUNNER_READY_FD_ENV "TABBIFY_READY_FD"
/** How long a graceful stop waits for requests in flight. */
#define TB_RUNNER_GRACE_MS 10000
#define TB_RUNNER_MAX_WORKERS 64
/** Requests waiting for a worker beyond this are answered 503. */
#define TB_RUNNER_MAX_QUEUED 1024

typedef enum tb_runner_lifecycle {
  TB_RUNNER_ALWAYS_ON = 0,
  TB_RUNNER_ON_REQUEST = 1,
} tb_runner_lifecycle_t;

/** A parsed spec file. Every string is owned by the spec (tb_runner_spec_deinit). */
typedef struct tb_runner_spec {
  char *runner, *app, *deployment, *supervisor; /* uuids as text; deployment/supervisor may be "" */
  int64_t version;
  char *name;     /* "app" when absent */
  char *runtime;  /* "wasm-http" */
  char *artifact; /* absolute path */
  char *digest;   /* "" when absent; else "sha256:<hex>" or "blake3:<hex>" (checked syntax) */
  char *listen, *control, *log;
  tb_runner_lifecycle_t lifecycle;
  uint32_t idle_timeout_sec, memory_mb, request_timeout_sec;
  char **env; /* "KEY=VALUE" each */
  size_t nenv;
  char **args;
  size_t nargs;
  uint32_t workers; /* as given; 0: pick (tb_runner_spec_workers) */
  /* Runtimes that forward to the app's own server (docker): */
  uint32_t port;        /* the app's HTTP port; TB_MANIFEST_DEFAULT_PORT when absent */
  char *health_path;    /* "" when absent: the app is ready once its port accepts */
  char *docker_socket;  /* "" when absent: the daemon's default socket */
} tb_runner_spec_t;

/**
 * Parses `len` bytes of spec JSON into *out (caller-owned storage; zeroed first). Returns
 * 0, or TB_EPARSE / TB_EINVAL with a sentence in `eb` naming the field ("spec field
 * \"listen\" is missing"). On failure *out holds nothing to free.
 */
int tb_runner_spec_parse(const char *text, size_t len, tb_runner_spec_t *out, tb_errbuf_t *eb);
/** Frees what the spec owns. A zeroed spec is fine. */
void tb_runner_spec_deinit(tb_runner_spec_t *spec);
/** The worker count to use: spec->workers, or online CPUs clamped to 2..64 when 0. */
uint32_t tb_runner_spec_workers(const tb_runner_spec_t *spec);

/**
 * Checks that `len` bytes hash to `digest` ("sha256:<hex>" or "blake3:<hex>"; "" passes).
 * Returns 0, TB_EINVAL (malformed digest) or TB_ECORRUPT (mismatch), with a sentence.
 */
int tb_runner_digest_check(const uint8_t *data, size_t len, const char *digest, tb_errbuf_t *eb);
/** The same for the file at `path`, read in pieces (artifacts of any size). */
int tb_runner_digest_check_file(const char *path, const char *digest, tb_errbuf_t *eb);

/**
 * The whole program: parses argv, runs the app until it is stopped, returns the exit
 * code. Call from main() on the main thread, once per process: it installs signal
 * handlers (SIGTERM, SIGINT; SIGHUP and SIGPIPE ignored) and runs its own uv loop.
 */
int tb_runner_main(int argc, char **argv);

#endif /* TB_RUNNER_H */
