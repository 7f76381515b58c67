/*
 * names.c — the engine's words for types and traps (include/tb/wasm.h).
 *
 * A file of its own so that every stage can name things without linking the runtime.
 */
#include "tb/wasm.h"

#include <stdio.h>

const char *tb_wasm_valtype_name(tb_wasm_valtype_t t) {
  switch (t) {
  case TB_WASM_I32:
    return "i32";
  case TB_WASM_I64:
    return "i64";
  case TB_WASM_F32:
    return "f32";
  case TB_WASM_F64:
    return "f64";
  case TB_WASM_V128:
    return "v128";
  case TB_WASM_FUNCREF:
    return "funcref";
  case TB_WASM_EXTERNREF:
    return "externref";
  }
  return "?";
}

const char *tb_wasm_trap_message(tb_wasm_trap_kind_t kind) {
  switch (kind) {
  case TB_WASM_TRAP_NONE:
    return "no trap";
  case TB_WASM_TRAP_UNREACHABLE:
    return "unreachable";
  case TB_WASM_TRAP_MEMORY_OOB:
    return "out of bounds memory access";
  case TB_WASM_TRAP_TABLE_OOB:
    return "out of bounds table access";
  case TB_WASM_TRAP_UNDEFINED_ELEMENT:
    return "undefined element";
  case TB_WASM_TRAP_UNINITIALIZED_ELEMENT:
    return "uninitialized element";
  case TB_WASM_TRAP_INDIRECT_TYPE:
    return "indirect call type mismatch";
  case TB_WASM_TRAP_DIV_ZERO:
    return "integer divide by zero";
  case TB_WASM_TRAP_INT_OVERFLOW:
    return "integer overflow";
  case TB_WASM_TRAP_INVALID_CONVERSION:
    return "invalid conversion to integer";
  case TB_WASM_TRAP_STACK_EXHAUSTED:
    return "call stack exhausted";
  case TB_WASM_TRAP_INTERRUPTED:
    return "interrupted";
  case TB_WASM_TRAP_NULL_REFERENCE:
    return "null reference";
  case TB_WASM_TRAP_HOST:
    return "host function failed";
  case TB_WASM_TRAP_EXIT:
    return "exit";
  }
  return "trap";
}

void tb_wasm_functype_format(const tb_wasm_functype_t *t, char *buf, size_t size) {
  size_t n = 0;
  n += (size_t)snprintf(buf + n, size - n, "(");
  for (uint32_t i = 0; i < t->nparams && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", tb_wasm_valtype_name(t->params[i]));
  if (n < size) n += (size_t)snprintf(buf + n, size - n, ") -> (");
  for (uint32_t i = 0; i < t->nresults && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", tb_wasm_valtype_name(t->results[i]));
  if (n < size) snprintf(buf + n, size - n, ")");
}
