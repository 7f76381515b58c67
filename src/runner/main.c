/*
 * tabbify-runner — runs one app for the supervisor. Everything is lib/runner
 * (include/tb/runner.h has the contract: spec file, readiness line, exit codes).
 */
#include "tb/runner.h"

int main(int argc, char **argv) { return tb_runner_main(argc, argv); }
