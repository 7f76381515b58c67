/*
 * cli_int.h — what the command files of lib/cli share.
 */
#ifndef TB_CLI_INT_H
#define TB_CLI_INT_H

#include "tb/cli.h"

typedef struct tb__cli_cmd {
  const char *name;
  const char *args;    /* usage after the name, e.g. "check [FILE]" */
  const char *summary; /* one line for `tabbify help` */
  int (*run)(int argc, char **argv); /* argv[0] is the command's own name */
} tb__cli_cmd_t;

/** Prints "tabbify: <sentence>\n" to stderr and returns `status`. */
int tb__cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Dispatches argv[1] among `cmds` (n entries) with a did-you-mean for typos. */
int tb__cli_dispatch(const char *prefix, const tb__cli_cmd_t *cmds, int n, int argc, char **argv);

/**
 * The state directory: `flag` if given, else $TABBIFY_STATE_DIR, $XDG_STATE_HOME/tabbify,
 * ~/.local/state/tabbify. Returns `flag`, the environment's string or `buf`.
 */
const char *tb__cli_state_dir(const char *flag, char *buf, size_t size);

int tb__cli_manifest(int argc, char **argv);
int tb__cli_ula(int argc, char **argv);
int tb__cli_events(int argc, char **argv);
int tb__cli_wasm(int argc, char **argv);
int tb__cli_token(int argc, char **argv);
int tb__cli_init(int argc, char **argv);
int tb__cli_push(int argc, char **argv);
int tb__cli_ls(int argc, char **argv);
int tb__cli_status(int argc, char **argv);
int tb__cli_deploy(int argc, char **argv);
int tb__cli_stop(int argc, char **argv);
int tb__cli_rollback(int argc, char **argv);
int tb__cli_logs(int argc, char **argv);
int tb__cli_up(int argc, char **argv);

#endif /* TB_CLI_INT_H */
