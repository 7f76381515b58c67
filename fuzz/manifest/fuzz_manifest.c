/*
 * fuzz_manifest.c — libFuzzer target: any bytes through tb_manifest_parse, then the
 * resolved manifest through the JSON writer. Nothing may crash, leak or read out of
 * bounds; an accepted manifest must always serialise.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tb/json.h"
#include "tb/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tb_diags_t diags;
  tb_manifest_t *m = NULL;
  tb_diags_init(&diags);
  int rc = tb_manifest_parse((const char *)data, size, &m, &diags);
  if (rc == 0) {
    json_t *j = tb_manifest_to_json(m);
    if (j == NULL) abort();
    tb_buf_t out;
    tb_buf_init(&out, TB_BUF_DEFAULT_MAX);
    if (tb_json_dump(j, TB_JSON_COMPACT, &out) != 0) abort();
    tb_buf_deinit(&out);
    json_decref(j);
  } else if (rc == TB_EPARSE && diags.errors == 0) {
    abort(); /* a rejection must always say why */
  }
  tb_buf_t text;
  tb_buf_init(&text, TB_BUF_DEFAULT_MAX);
  tb_diags_format(&diags, "fuzz.toml", &text);
  tb_buf_deinit(&text);
  tb_manifest_free(m);
  tb_diags_deinit(&diags);
  return 0;
}
