/*
 * cmd_init.c — `tabbify init [--name NAME] [--force]`: writes a commented tabbify.toml
 * for a WebAssembly HTTP app into the current directory. The template passes
 * `tabbify manifest check` as written; the app gets its id at the first `tabbify push`.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_int.h"

static const char template_[] =
    "# tabbify.toml — how Tabbify builds, runs and places this app (docs/manifest.md).\n"
    "\n"
    "[app]\n"
    "# Lower-case letters, digits and '-'. `tabbify push` adds `id = \"<uuid>\"` here:\n"
    "# the app's identity (its private IPv6 address derives from it). Keep it once set.\n"
    "name = \"%s\"\n"
    "\n"
    "[build]\n"
    "# \"wasm\": a WebAssembly module; \"docker\": an OCI image (dockerfile, image or archive).\n"
    "kind = \"wasm\"\n"
    "# The module `tabbify push` uploads, relative to this file.\n"
    "wasm = \"app.wasm\"\n"
    "# command = \"cargo build --release --target wasm32-wasip1\"\n"
    "\n"
    "[runtime]\n"
    "# wasm-http, docker or firecracker; deploys go to a supervisor tagged with it.\n"
    "type = \"wasm-http\"\n"
    "# always_on, or on_request (started by the first request, stopped when idle).\n"
    "lifecycle = \"on_request\"\n"
    "idle_timeout_sec = 300\n"
    "memory_mb = 64\n"
    "\n"
    "# [env]\n"
    "# GREETING = \"hello\"\n"
    "\n"
    "# [[deploy]]\n"
    "# supervisor = \"edge-1\"\n"
    "# runtime = \"wasm-http\"\n";

int tb__cli_init(int argc, char **argv) {
  const char *name = NULL;
  bool force = false;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) name = argv[++i];
    else if (strcmp(argv[i], "--force") == 0) force = true;
    else return tb__cli_fail(2, "unknown option %s for init.", argv[i]);
  }
  char cwd[4096], fallback[64];
  if (!name) {
    /* The directory's name, made into a valid app name. */
    const char *base = getcwd(cwd, sizeof cwd) ? basename(cwd) : "app";
    size_t j = 0;
    for (const char *p = base; *p && j < sizeof fallback - 1; p++) {
      int c = tolower((unsigned char)*p);
      if (isalnum(c) || c == '-') fallback[j++] = (char)c;
      else if (j > 0 && fallback[j - 1] != '-') fallback[j++] = '-';
    }
    while (j > 0 && fallback[j - 1] == '-') j--;
    fallback[j] = 0;
    name = j ? fallback : "app";
  }
  for (const char *p = name; *p; p++)
    if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-') || strlen(name) > 63)
      return tb__cli_fail(2, "\"%s\" is not an app name: use lower-case letters, digits and '-'.", name);
  int fd = open("tabbify.toml", O_WRONLY | O_CREAT | (force ? O_TRUNC : O_EXCL), 0644);
  if (fd < 0)
    return tb__cli_fail(1, errno == EEXIST ? "tabbify.toml exists already; use --force to overwrite it."
                                           : "cannot write tabbify.toml: %s.",
                        strerror(errno));
  FILE *f = fdopen(fd, "w");
  int ok = f && fprintf(f, template_, name) > 0;
  if (f) ok = fclose(f) == 0 && ok;
  if (!ok) return tb__cli_fail(1, "cannot write tabbify.toml.");
  printf("wrote tabbify.toml for app \"%s\"\n", name);
  return 0;
}
