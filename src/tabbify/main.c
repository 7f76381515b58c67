/*
 * main.c — the `tabbify` (and `tcli`) program: everything lives in lib/cli.
 */
#include "tb/cli.h"

int main(int argc, char **argv) { return tb_cli_main(argc, argv); }
