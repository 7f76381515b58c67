/*
 * cmd_manifest.c — `tabbify manifest check [FILE]`.
 *
 * Prints the resolved manifest as JSON on stdout, warnings on stderr, and exits 0; or
 * prints one "FILE:LINE:COL: message" line per problem on stderr and exits 2.
 */
#include <stdio.h>
#include <string.h>

#include "cli_int.h"
#include "tb/json.h"
#include "tb/manifest.h"

static int check(const char *path) {
  int status = TB_EXIT_FAIL;
  tb_manifest_t *m = NULL;
  json_t *j = NULL;
  tb_diags_t diags;
  tb_buf_t out;
  tb_diags_init(&diags);
  tb_buf_init(&out, TB_BUF_DEFAULT_MAX);

  int rc = tb_manifest_load(path, &m, &diags);
  tb_diags_format(&diags, path, &out);
  fputs(tb_buf_cstr(&out), stderr);
  if (rc == TB_EPARSE || rc == TB_ETOOBIG) {
    status = TB_EXIT_USAGE;
    goto out;
  }
  if (rc) {
    if (diags.n == 0) tb__cli_fail(TB_EXIT_FAIL, "cannot check %s: %s", path, tb_strerror(rc));
    goto out;
  }
  tb_buf_reset(&out);
  j = tb_manifest_to_json(m);
  if (j == NULL || tb_json_dump(j, TB_JSON_PRETTY, &out) != 0) {
    tb__cli_fail(TB_EXIT_FAIL, "out of memory");
    goto out;
  }
  puts(tb_buf_cstr(&out));
  status = TB_EXIT_OK;
out:
  json_decref(j);
  tb_manifest_free(m);
  tb_buf_deinit(&out);
  tb_diags_deinit(&diags);
  return status;
}

int tb__cli_manifest(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "check") != 0 || argc > 3)
    return tb__cli_fail(TB_EXIT_USAGE, "usage: tabbify manifest check [FILE]  (FILE defaults to tabbify.toml)");
  return check(argc == 3 ? argv[2] : "tabbify.toml");
}
