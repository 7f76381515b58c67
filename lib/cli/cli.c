/*
 * cli.c — command dispatch, help and the shared error style of `tabbify`.
 *
 * Errors are one sentence on stderr prefixed "tabbify: ", then a non-zero exit; a
 * mistyped command gets the closest real one suggested.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "tb/suggest.h"

int tb__cli_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("tabbify: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return status;
}

const char *tb__cli_state_dir(const char *flag, char *buf, size_t size) {
  if (flag) return flag;
  const char *env = getenv("TABBIFY_STATE_DIR");
  if (env && *env) return env;
  const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  if (xdg && *xdg) snprintf(buf, size, "%s/tabbify", xdg);
  else snprintf(buf, size, "%s/.local/state/tabbify", home && *home ? home : ".");
  return buf;
}

static void usage(FILE *f, const char *prefix, const tb__cli_cmd_t *cmds, int n) {
  fprintf(f, "usage: %s <command> [arguments]\n\ncommands:\n", prefix);
  for (int i = 0; i < n; i++) {
    char head[160];
    snprintf(head, sizeof head, "%s %s", cmds[i].name, cmds[i].args);
    /* A long synopsis gets the summary on a line of its own, aligned with the others. */
    if (strlen(head) > 28)
      fprintf(f, "  %s\n  %-28s %s\n", head, "", cmds[i].summary);
    else
      fprintf(f, "  %-28s %s\n", head, cmds[i].summary);
  }
}

int tb__cli_dispatch(const char *prefix, const tb__cli_cmd_t *cmds, int n, int argc, char **argv) {
  if (argc < 2) {
    usage(stderr, prefix, cmds, n);
    return TB_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
    usage(stdout, prefix, cmds, n);
    return TB_EXIT_OK;
  }
  const char *names[64];
  for (int i = 0; i < n; i++) {
    if (strcmp(cmds[i].name, name) == 0) return cmds[i].run(argc - 1, argv + 1);
    if (i < 64) names[i] = cmds[i].name;
  }
  const char *hint = tb_suggest(name, names, (size_t)(n < 64 ? n : 64));
  if (hint) return tb__cli_fail(TB_EXIT_USAGE, "unknown command \"%s %s\", did you mean \"%s %s\"?", prefix, name, prefix, hint);
  return tb__cli_fail(TB_EXIT_USAGE, "unknown command \"%s %s\"; run \"%s help\" for the list", prefix, name, prefix);
}

static int cmd_version(int argc, char **argv) {
  puts("tabbify " TB_VERSION);
  return TB_EXIT_OK;
}

static const tb__cli_cmd_t commands[] = {
    {"up", "[--state-dir DIR] [--listen ADDR]", "run node, supervisor and the demo app on this machine", tb__cli_up},
    {"manifest", "check [FILE]", "validate tabbify.toml and print it resolved, as JSON", tb__cli_manifest},
    {"ula", "UUID", "print the private IPv6 address of the app with this id", tb__cli_ula},
    {"events", "[--from N] [--follow] [--server URL]",
     "print the event log for audit, local or from a node (--type T, --json, --verify)", tb__cli_events},
    {"wasm", "run [--dir H[::G]] [--dir-ro H[::G]] [--env K[=V]] FILE [--invoke NAME] [ARGS]",
     "run a WebAssembly module on Tabbify's engine, granting only what is named", tb__cli_wasm},
    {"init", "[--name NAME] [--force]", "write a commented tabbify.toml here", tb__cli_init},
    {"push", "[--manifest FILE]", "upload the app's artifact as its next version", tb__cli_push},
    {"ls", "", "list your apps", tb__cli_ls},
    {"status", "[--app UUID]", "show one app: versions, deployment", tb__cli_status},
    {"deploy", "[--version N] [--target NAME]", "run a version on a supervisor", tb__cli_deploy},
    {"stop", "[--app UUID]", "stop the app", tb__cli_stop},
    {"rollback", "[--version N]", "go back to the previous version", tb__cli_rollback},
    {"logs", "[-f]", "print the app's log (-f: keep following)", tb__cli_logs},
    {"token", "create --tenant T --scope S... [--ttl SECONDS]", "mint an API token with the node's key (local)",
     tb__cli_token},
    {"token", "revoke --token-id JTI | --key-id KID", "revoke a token, or every token of a key (needs admin:revoke)",
     tb__cli_token},
    {"version", "", "print the version", cmd_version},
};

int tb_cli_main(int argc, char **argv) {
  return tb__cli_dispatch("tabbify", commands, (int)(sizeof commands / sizeof commands[0]), argc, argv);
}
