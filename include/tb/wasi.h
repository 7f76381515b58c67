/*
 * wasi.h — WASI preview 1 (`wasi_snapshot_preview1`) on Tabbify's engine, with grants.
 *
 * A guest gets nothing it was not given. The host builds a configuration — program
 * arguments, environment variables, directories (each optionally read-only), stdio and
 * pre-opened sockets — and every WASI context made from it sees exactly that:
 *
 *   config   what is granted. Built once, reusable: each context made from it gets its
 *            own descriptors (a fresh open of each granted directory, a dup of each
 *            socket), so a runner can keep one config per app and make a context per
 *            request. Not thread-safe while being built; read-only afterwards, so any
 *            number of threads may make contexts from it at once.
 *   ctx      one guest's view of the world: its descriptor table (guest numbers, never
 *            host ones, each with the witx's base and inheriting rights), its arguments
 *            and environment. Used by one thread at a time, the one running its store.
 *
 * Paths are resolved beneath the directory descriptor they are relative to, by the
 * kernel's openat2(RESOLVE_BENEATH) where it exists and by a component-by-component
 * O_NOFOLLOW walk where it does not; `..`, absolute paths, symbolic links (including
 * one swapped in during resolution), hard links and renames cannot leave a granted
 * directory. Such attempts fail with WASI's `notcapable` errno. Every guest pointer and
 * length is checked through the engine's bounds-checked memory helpers; a bad one is
 * `fault`, never a host crash. docs/internals/WASI.md has the design.
 *
 * Errors follow include/tb/err.h: 0 or a negative TB_E* code, with a sentence in the
 * optional tb_errbuf_t for anything a user typed or a module declared.
 */
#ifndef TB_WASI_H
#define TB_WASI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/err.h"
#include "tb/wasm.h"

/** The import module name every WASI preview 1 function lives in. */
#define TB_WASI_MODULE "wasi_snapshot_preview1"

typedef struct tb_wasi_config tb_wasi_config_t;
typedef struct tb_wasi_ctx tb_wasi_ctx_t;

/* ---- Stdio ---- */

/**
 * A sink for guest output: consumes up to `len` bytes of `data` (borrowed for the call)
 * and returns how many it took (a short count is a short write), or a negative TB_E*
 * code, which the guest sees as the matching errno. Runs on the guest's thread, inside
 * the guest's fd_write, so it must not call back into the same store.
 */
typedef int64_t (*tb_wasi_write_fn)(void *arg, const uint8_t *data, size_t len);
/**
 * A source for guest input: fills up to `len` bytes of `buf` and returns the count,
 * 0 at the end of input, or a negative TB_E* code. Same thread rules as the sink.
 */
typedef int64_t (*tb_wasi_read_fn)(void *arg, uint8_t *buf, size_t len);

typedef enum tb_wasi_stdio_kind {
  TB_WASI_STDIO_NULL = 0, /* reads see end of input, writes are accepted and dropped (default) */
  TB_WASI_STDIO_FD,       /* a host descriptor: each context uses its own dup of it */
  TB_WASI_STDIO_CALLBACK, /* read (fd 0) or write (fds 1, 2) through the functions below */
} tb_wasi_stdio_kind_t;

typedef struct tb_wasi_stdio {
  tb_wasi_stdio_kind_t kind;
  int fd;                /* FD: borrowed; the config dups it, the caller keeps its own */
  tb_wasi_read_fn read;  /* CALLBACK on guest fd 0 */
  tb_wasi_write_fn write;/* CALLBACK on guest fds 1 and 2 */
  void *arg;             /* passed back to read/write; not owned, must outlive the contexts */
} tb_wasi_stdio_t;

/* ---- Configuration (the grants) ---- */

/** tb_wasi_config_dir flag: the guest may read the directory tree but change nothing. */
#define TB_WASI_DIR_READONLY 1u

/* How paths are resolved beneath a directory. AUTO uses openat2 when the kernel has it. */
typedef enum tb_wasi_resolver {
  TB_WASI_RESOLVE_AUTO = 0,
  TB_WASI_RESOLVE_OPENAT2, /* openat2(RESOLVE_BENEATH); TB_ENOSYS at context creation without it */
  TB_WASI_RESOLVE_WALK,    /* the portable O_NOFOLLOW walk, for kernels before 5.6 (and tests) */
} tb_wasi_resolver_t;

/** An empty configuration (no arguments, environment, directories; null stdio). */
int tb_wasi_config_new(tb_wasi_config_t **out);
/** Frees the configuration and closes the descriptors it opened. NULL is fine. Contexts
 *  made from it stay valid: they hold their own descriptors. */
void tb_wasi_config_free(tb_wasi_config_t *cfg);

/** Appends one program argument (copied). The first is argv[0], the program's name. */
int tb_wasi_config_arg(tb_wasi_config_t *cfg, const char *arg);

/**
 * Grants an environment variable (both strings copied). `value` NULL inherits the host's
 * value, and grants nothing when the host has none. TB_EINVAL, with a sentence, for an
 * empty name or one containing '='.
 */
int tb_wasi_config_env(tb_wasi_config_t *cfg, const char *name, const char *value, tb_errbuf_t *eb);
/** The command-line form: "KEY=VALUE", or "KEY" to inherit the host's KEY. */
int tb_wasi_config_env_grant(tb_wasi_config_t *cfg, const char *spec, tb_errbuf_t *eb);

/**
 * Grants the host directory `host_path` to the guest under the name `guest_path` (its
 * pre-open name, what the guest's libc matches paths against). The directory is opened
 * now, so a bad grant fails here, with a sentence that does not repeat the path ("no
 * such directory", "not a directory", "permission denied"): the caller names the grant.
 * `flags`: TB_WASI_DIR_READONLY. Both strings are copied.
 */
int tb_wasi_config_dir(tb_wasi_config_t *cfg, const char *host_path, const char *guest_path, unsigned flags,
                       tb_errbuf_t *eb);
/** The command-line form "HOST[::GUEST]"; GUEST defaults to HOST as written (wasmtime's rule). */
int tb_wasi_config_dir_grant(tb_wasi_config_t *cfg, const char *spec, unsigned flags, tb_errbuf_t *eb);

/** Sets guest fd `guest_fd` (0, 1 or 2). TB_EINVAL for another fd, for a callback kind
 *  without the function that fd needs, or a descriptor that is not open. */
int tb_wasi_config_stdio(tb_wasi_config_t *cfg, int guest_fd, const tb_wasi_stdio_t *io);

/**
 * Pre-opens a socket: a listening socket (the guest may sock_accept on it) or a connected
 * stream socket (sock_recv/sock_send/sock_shutdown). `host_fd` is borrowed and dup'd.
 * Sockets get guest numbers after the pre-opened directories, in the order given.
 */
int tb_wasi_config_socket(tb_wasi_config_t *cfg, int host_fd, tb_errbuf_t *eb);

/** Caps the guest's open descriptors (default 1024); past it, opens fail with `mfile`. */
void tb_wasi_config_max_fds(tb_wasi_config_t *cfg, uint32_t max_fds);
/** Chooses the path resolver (default AUTO). */
void tb_wasi_config_resolver(tb_wasi_config_t *cfg, tb_wasi_resolver_t resolver);

/* ---- Contexts ---- */

/**
 * A new context with the grants of `cfg` (borrowed: the context copies or reopens what it
 * needs). Free with tb_wasi_ctx_free, after every store whose functions were linked to it.
 */
int tb_wasi_ctx_new(const tb_wasi_config_t *cfg, tb_wasi_ctx_t **out, tb_errbuf_t *eb);
/** Closes every descriptor of the guest and frees the context. NULL is fine. */
void tb_wasi_ctx_free(tb_wasi_ctx_t *ctx);

/** True when `module` imports anything from wasi_snapshot_preview1. */
bool tb_wasi_module_uses_wasi(const tb_wasm_module_t *module);

/**
 * Resolves every wasi_snapshot_preview1 import of `module` into a host function of
 * `store` bound to `ctx`, writing each into `imports` at the import's index (an array of
 * tb_wasm_module_import_count(module) entries, owned by the caller). Imports from other
 * modules are left untouched for the caller to fill. An unknown WASI function or one
 * imported with the wrong type is TB_ENOTFOUND / TB_EINVAL with a sentence naming it.
 * The host functions belong to `store`; `ctx` must outlive every call into them.
 */
int tb_wasi_link(tb_wasi_ctx_t *ctx, tb_wasm_store_t *store, const tb_wasm_module_t *module,
                 tb_wasm_extern_t *imports, tb_errbuf_t *eb);

/**
 * Links and instantiates `module` in `store`, then runs `_initialize` if the module
 * exports one (a reactor). `imports` may be NULL when every import is a WASI one;
 * otherwise it holds one entry per import, the non-WASI ones filled by the caller (the
 * WASI ones are overwritten). A trap in the start function or `_initialize` is TB_ETRAP
 * with *trap filled. The instance belongs to the store.
 */
int tb_wasi_instantiate(tb_wasi_ctx_t *ctx, tb_wasm_store_t *store, const tb_wasm_module_t *module,
                        const tb_wasm_extern_t *imports, tb_wasm_instance_t **out, tb_wasm_trap_t *trap,
                        tb_errbuf_t *eb);

/**
 * Runs a command module: instantiates it (all imports must be WASI ones) and calls
 * `_start`. Returns 0 when the guest finished, with *exit_code its proc_exit code (0 when
 * _start returned; 128 + the signal number after a terminating proc_raise); TB_ETRAP
 * when it trapped, *trap saying how; another code, with a sentence, when the module
 * could not be linked or is not a command.
 */
int tb_wasi_run_command(tb_wasi_ctx_t *ctx, tb_wasm_store_t *store, const tb_wasm_module_t *module,
                        int *exit_code, tb_wasm_trap_t *trap, tb_errbuf_t *eb);

/** The WASI signal the guest ended itself with through proc_raise, or 0. */
int tb_wasi_ctx_raised_signal(const tb_wasi_ctx_t *ctx);

/** WASI's name for a signal number ("SIGTERM"), or "SIG?" for one it does not define. */
const char *tb_wasi_signal_name(int wasi_signal);

#endif /* TB_WASI_H */
