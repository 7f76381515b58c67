/*
 * cmd_ula.c — `tabbify ula UUID`: the app's private address, as every program derives it.
 */
#include <stdio.h>
#include <string.h>

#include "cli_int.h"
#include "tb/ula.h"

int tb__cli_ula(int argc, char **argv) {
  if (argc != 2) return tb__cli_fail(TB_EXIT_USAGE, "usage: tabbify ula UUID");
  tb_uuid_t id;
  if (tb_uuid_parse(argv[1], strlen(argv[1]), &id) != 0)
    return tb__cli_fail(TB_EXIT_USAGE, "\"%s\" is not a UUID (expected the form 0192e4c4-7b5e-7a8c-9d2f-3c4b5a697887)",
                        argv[1]);
  tb_ula_t ula;
  char text[TB_ULA_STR_MAX];
  tb_ula_derive_app(&id, &ula);
  tb_ula_format(&ula, text);
  puts(text);
  return TB_EXIT_OK;
}
