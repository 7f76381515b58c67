/*
 * cli.h — the `tabbify` command line (also installed as `tcli`).
 *
 * Each command is a function in lib/cli/cmd_<name>.c; src/tabbify/main.c only calls
 * tb_cli_main. Exit status: 0 success, 1 the operation failed, 2 the input was wrong
 * (bad usage, an invalid manifest).
 */
#ifndef TB_CLI_H
#define TB_CLI_H

enum { TB_EXIT_OK = 0, TB_EXIT_FAIL = 1, TB_EXIT_USAGE = 2 };

/** Runs the command line `argv` and returns the process exit status. */
int tb_cli_main(int argc, char **argv);

#endif /* TB_CLI_H */
