/*
 * fuzz_runner_spec.c — libFuzzer target: any bytes through tb_runner_spec_parse (the
 * runner's spec file). Nothing may crash, leak or read out of bounds; a refusal must
 * always say why, and an accepted spec must have every required field.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tb/runner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tb_runner_spec_t s;
  char buf[300] = "";
  tb_errbuf_t eb = {buf, sizeof buf};
  int rc = tb_runner_spec_parse((const char *)data, size, &s, &eb);
  if (rc == 0) {
    if (!s.runner[0] || !s.app[0] || !s.artifact[0] || !s.listen[0] || !s.control[0] || !s.log[0]) abort();
    if (tb_runner_spec_workers(&s) < 1) abort();
    tb_runner_spec_deinit(&s);
  } else if (rc != TB_ENOMEM && buf[0] == '\0') {
    abort();
  }
  return 0;
}
