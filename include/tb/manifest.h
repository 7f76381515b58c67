/*
 * manifest.h — tabbify.toml, the one manifest every Tabbify program reads.
 *
 * tb_manifest_parse() turns the TOML text into a resolved tb_manifest_t: every default
 * filled in, every cross-field rule checked. What is wrong is reported as diagnostics,
 * one per problem, each with the line and column of the key or value at fault, so a
 * user sees all mistakes at once:
 *
 *   tabbify.toml:7:12: runtime.type must be one of wasm-http, docker, firecracker, got "dockr"
 *   tabbify.toml:3:1: unknown key "nmae" in [app], did you mean "name"?
 *
 * The defaults are listed once, below (TB_MANIFEST_DEFAULT_*), and the user's reference
 * in docs/manifest.md quotes them. The manifest owns all of its memory; programs read its
 * fields directly and free it with tb_manifest_free().
 */
#ifndef TB_MANIFEST_H
#define TB_MANIFEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tb/buf.h"
#include "tb/uuid.h"

/* ---- Defaults: the one place they are written down. ---- */
#define TB_MANIFEST_DEFAULT_LIFECYCLE TB_LIFECYCLE_ALWAYS_ON
#define TB_MANIFEST_DEFAULT_IDLE_TIMEOUT_SEC 300
#define TB_MANIFEST_DEFAULT_MEMORY_MB 256
#define TB_MANIFEST_DEFAULT_PORT 8080 /* docker/firecracker: the app's HTTP port */
#define TB_MANIFEST_DEFAULT_REQUEST_TIMEOUT_SEC 30
#define TB_MANIFEST_DEFAULT_DOCKERFILE "Dockerfile"
#define TB_MANIFEST_DEFAULT_CONTEXT "."
#define TB_MANIFEST_DEFAULT_SOURCE_PATH "."
/* build.kind defaults to "docker" when [build] names docker inputs, else "wasm"; runtime.type
 * defaults to "wasm-http" for wasm builds and "docker" for docker builds. */

/* ---- Limits. ---- */
#define TB_MANIFEST_MAX_BYTES (1u << 20) /* a larger file is refused before parsing */
#define TB_MANIFEST_WASM_MAX_MEMORY_MB 4096 /* a 32-bit linear memory */
#define TB_MANIFEST_MAX_MEMORY_MB (1u << 20)

typedef enum tb_build_kind {
  TB_BUILD_WASM = 1,
  TB_BUILD_DOCKER,
} tb_build_kind_t;

typedef enum tb_runtime {
  TB_RUNTIME_WASM_HTTP = 1,
  TB_RUNTIME_DOCKER,
  TB_RUNTIME_FIRECRACKER,
} tb_runtime_t;

typedef enum tb_lifecycle {
  TB_LIFECYCLE_ALWAYS_ON = 1,
  TB_LIFECYCLE_ON_REQUEST,
} tb_lifecycle_t;

/** "wasm" / "docker"; "wasm-http" / "docker" / "firecracker"; "always_on" / "on_request". */
const char *tb_build_kind_name(tb_build_kind_t k);
const char *tb_runtime_name(tb_runtime_t r);
const char *tb_lifecycle_name(tb_lifecycle_t l);
/** Parses a runtime name as above; TB_EINVAL for anything else. */
int tb_runtime_parse(const char *name, tb_runtime_t *out);

typedef struct tb_strv {
  char **v;
  size_t n;
} tb_strv_t;

typedef struct tb_env_var {
  char *key;
  char *value;
} tb_env_var_t;

/* Name/value pairs in file order: [env], build.args. */
typedef struct tb_env {
  tb_env_var_t *v;
  size_t n;
} tb_env_t;

typedef struct tb_portv {
  uint16_t *v;
  size_t n;
} tb_portv_t;

typedef struct tb_manifest_deploy {
  char *supervisor;
  tb_runtime_t runtime; /* the override, or runtime.type when the block has none */
} tb_manifest_deploy_t;

typedef struct tb_manifest {
  struct {
    char *name;        /* lower-case letters, digits and '-', 1-63 chars; NULL if unset
                          (tb_manifest_load defaults it to the directory's name) */
    bool has_id;       /* false until `tabbify push` stamps one */
    tb_uuid_t id;      /* a UUID v7 */
    char *description; /* optional */
  } app;
  struct {
    tb_build_kind_t kind;
    char *command;    /* optional shell command that builds the artifact */
    char *wasm;       /* kind wasm: path of the module (unless [from] composes one) */
    char *dockerfile; /* kind docker: build from this Dockerfile ... */
    char *context;    /* ... in this directory; or: */
    char *image;      /* kind docker: run this image reference instead of building; or: */
    char *archive;    /* kind docker: push this `docker save` / OCI-layout tarball */
    tb_env_t args;    /* kind docker: build arguments */
  } build;
  struct {
    tb_runtime_t type;
    tb_lifecycle_t lifecycle;
    uint32_t idle_timeout_sec;    /* on_request: stop after this long without traffic */
    uint32_t memory_mb;
    uint32_t port;                /* docker/firecracker: where the app serves HTTP */
    uint32_t request_timeout_sec; /* per-request deadline */
    tb_strv_t args;               /* program arguments (wasm argv[1..], container command) */
    char *health_path;            /* optional HTTP path the runner polls */
  } runtime;
  tb_env_t env; /* [env] */
  tb_manifest_deploy_t *deploy; /* [[deploy]] blocks, in file order */
  size_t ndeploy;
  struct {
    char *image; /* [from] image: a base runtime image (seed 004); NULL if absent */
  } from;
  struct {
    char *path;       /* [source] path */
    char *entrypoint; /* required with [from] */
    tb_strv_t exclude;
  } source;
  struct {
    tb_portv_t listen; /* [capabilities.network] listen: ports the app serves on */
    tb_strv_t connect; /* outbound "host:port" the app may reach; none by default */
  } network;
} tb_manifest_t;

/* One problem found in a manifest. */
typedef struct tb_diag {
  uint32_t line, col; /* 1-based; 0 when the problem is with the file as a whole */
  bool warning;       /* warnings do not fail the parse */
  char *msg;          /* owned */
} tb_diag_t;

typedef struct tb_diags {
  tb_diag_t *v;
  size_t n, cap;
  size_t errors; /* how many of v are not warnings */
} tb_diags_t;

void tb_diags_init(tb_diags_t *d);
void tb_diags_deinit(tb_diags_t *d);
/** Appends "FILE:LINE:COL: [warning: ]MSG\n" per diagnostic to `out`. */
int tb_diags_format(const tb_diags_t *d, const char *filename, tb_buf_t *out);

/**
 * Parses and resolves a manifest from `len` bytes of text.
 * Returns 0 and a new manifest in *out (free with tb_manifest_free); warnings may have
 * been added to `diags`. Returns TB_EPARSE when the text is not TOML or breaks a rule
 * (every problem is in `diags`, *out is NULL), TB_ETOOBIG past TB_MANIFEST_MAX_BYTES,
 * TB_ENOMEM. `diags` must be initialised by the caller and is appended to.
 */
int tb_manifest_parse(const char *text, size_t len, tb_manifest_t **out, tb_diags_t *diags);

/**
 * Reads and parses the file at `path`. File errors are reported as a diagnostic at
 * line 0 ("cannot read tabbify.toml: no such file or directory") and their TB_E code.
 */
int tb_manifest_load(const char *path, tb_manifest_t **out, tb_diags_t *diags);

void tb_manifest_free(tb_manifest_t *m);

/** The resolved manifest as a new JSON object (every default made explicit), or NULL. */
json_t *tb_manifest_to_json(const tb_manifest_t *m);

#endif /* TB_MANIFEST_H */
