/*
 * interp_ops.h — the instruction set of the internal code, as X-macro lists shared by
 * compile.c (which emits it) and interp.c (which runs it). Nothing else includes it.
 *
 * An instruction is a handler address (one cell) followed by its operands. Frame slots
 * are 32-bit indices packed two per cell (`.s.a`, `.s.b`); immediates and branch targets
 * take a cell each. The layouts, by shape (d = destination slot, a/b/c = source slots):
 *
 *   unary        [op][d,a]                    d = f(a)
 *   binary       [op][d,a][b,-]               d = f(a, b)
 *   binary imm   [op][d,a][imm64]             d = f(a, imm)
 *   br           [op][T]
 *   br_if        [op][c,-][T]                 also br_unless (branch when c == 0)
 *   cmp-branch   [op][a,b][T]                 branch when cmp(a, b)
 *   cmp-br imm   [op][a,-][imm64][T]
 *   load         [op][d,a][offset64]
 *   store        [op][a,v][offset64]
 *
 * Every other layout is documented beside its handler in interp.c. Numeric operations
 * are listed with their semantics, so the two files cannot disagree: X(name, wasm
 * opcode, operand type, result type, C expression over `a` and `b`). The types are
 * I32/I64 (held as uint32_t/uint64_t, so arithmetic wraps without UB), F32/F64 (float,
 * double) and F32B/F64B (a float's bits as an integer, for the operations the spec
 * defines bitwise: abs, neg, copysign). Helpers the expressions call are `static inline`
 * functions in interp.c; compile.c never evaluates the expressions.
 *
 * The `_loop` variants of branches check the store's interrupt flag when taken; the
 * compiler uses them for loop back-edges only.
 */
#ifndef TB_WASM_INTERP_OPS_H
#define TB_WASM_INTERP_OPS_H

#include <stdint.h>

#include "wasm_int.h"

/* d = f(a). */
#define TB__WOPS_UNARY(X)                                                     \
  X(i32_eqz, 0x45, I32, I32, a == 0)                                          \
  X(i64_eqz, 0x50, I64, I32, a == 0)                                          \
  X(i32_clz, 0x67, I32, I32, a ? (uint32_t)__builtin_clz(a) : 32u)            \
  X(i32_ctz, 0x68, I32, I32, a ? (uint32_t)__builtin_ctz(a) : 32u)            \
  X(i32_popcnt, 0x69, I32, I32, (uint32_t)__builtin_popcount(a))              \
  X(i64_clz, 0x79, I64, I64, a ? (uint64_t)__builtin_clzll(a) : 64u)          \
  X(i64_ctz, 0x7a, I64, I64, a ? (uint64_t)__builtin_ctzll(a) : 64u)          \
  X(i64_popcnt, 0x7b, I64, I64, (uint64_t)__builtin_popcountll(a))            \
  X(f32_abs, 0x8b, F32B, F32B, a & 0x7fffffffu)                               \
  X(f32_neg, 0x8c, F32B, F32B, a ^ 0x80000000u)                               \
  X(f32_ceil, 0x8d, F32, F32, fq32(ceilf(a), a))                                       \
  X(f32_floor, 0x8e, F32, F32, fq32(floorf(a), a))                                     \
  X(f32_trunc, 0x8f, F32, F32, fq32(truncf(a), a))                                     \
  X(f32_nearest, 0x90, F32, F32, fq32(nearbyintf(a), a))                               \
  X(f32_sqrt, 0x91, F32, F32, fq32(sqrtf(a), a))                                       \
  X(f64_abs, 0x99, F64B, F64B, a & 0x7fffffffffffffffu)                       \
  X(f64_neg, 0x9a, F64B, F64B, a ^ 0x8000000000000000u)                       \
  X(f64_ceil, 0x9b, F64, F64, fq64(ceil(a), a))                                        \
  X(f64_floor, 0x9c, F64, F64, fq64(floor(a), a))                                      \
  X(f64_trunc, 0x9d, F64, F64, fq64(trunc(a), a))                                      \
  X(f64_nearest, 0x9e, F64, F64, fq64(nearbyint(a), a))                                \
  X(f64_sqrt, 0x9f, F64, F64, fq64(sqrt(a), a))                                        \
  X(i32_wrap_i64, 0xa7, I64, I32, (uint32_t)a)                                \
  X(i64_extend_i32_s, 0xac, I32, I64, (uint64_t)(int64_t)(int32_t)a)          \
  X(i64_extend_i32_u, 0xad, I32, I64, (uint64_t)a)                            \
  X(f32_convert_i32_s, 0xb2, I32, F32, (float)(int32_t)a)                     \
  X(f32_convert_i32_u, 0xb3, I32, F32, (float)a)                              \
  X(f32_convert_i64_s, 0xb4, I64, F32, (float)(int64_t)a)                     \
  X(f32_convert_i64_u, 0xb5, I64, F32, (float)a)                              \
  X(f32_demote_f64, 0xb6, F64, F32, (float)a)                                 \
  X(f64_convert_i32_s, 0xb7, I32, F64, (double)(int32_t)a)                    \
  X(f64_convert_i32_u, 0xb8, I32, F64, (double)a)                             \
  X(f64_convert_i64_s, 0xb9, I64, F64, (double)(int64_t)a)                    \
  X(f64_convert_i64_u, 0xba, I64, F64, (double)a)                             \
  X(f64_promote_f32, 0xbb, F32, F64, (double)a)                               \
  X(i32_extend8_s, 0xc0, I32, I32, (uint32_t)(int32_t)(int8_t)a)              \
  X(i32_extend16_s, 0xc1, I32, I32, (uint32_t)(int32_t)(int16_t)a)            \
  X(i64_extend8_s, 0xc2, I64, I64, (uint64_t)(int64_t)(int8_t)a)              \
  X(i64_extend16_s, 0xc3, I64, I64, (uint64_t)(int64_t)(int16_t)a)            \
  X(i64_extend32_s, 0xc4, I64, I64, (uint64_t)(int64_t)(int32_t)a)

/* The saturating conversions (0xfc 0..7): d = f(a), never trapping. */
#define TB__WOPS_SAT(X)                                                       \
  X(i32_trunc_sat_f32_s, 0x00, F32, I32, sat_i32_s(a))                        \
  X(i32_trunc_sat_f32_u, 0x01, F32, I32, sat_i32_u(a))                        \
  X(i32_trunc_sat_f64_s, 0x02, F64, I32, sat_i32_s(a))                        \
  X(i32_trunc_sat_f64_u, 0x03, F64, I32, sat_i32_u(a))                        \
  X(i64_trunc_sat_f32_s, 0x04, F32, I64, sat_i64_s(a))                        \
  X(i64_trunc_sat_f32_u, 0x05, F32, I64, sat_i64_u(a))                        \
  X(i64_trunc_sat_f64_s, 0x06, F64, I64, sat_i64_s(a))                        \
  X(i64_trunc_sat_f64_u, 0x07, F64, I64, sat_i64_u(a))

/* Trapping conversions: X(name, opcode, from, to, lower bound, upper bound) — the
 * operand must be > lo and < hi (exclusive, exact in the source type) or it traps. */
#define TB__WOPS_TRUNC(X)                                                     \
  X(i32_trunc_f32_s, 0xa8, F32, I32, -2147483904.0f, 2147483648.0f, int32_t)  \
  X(i32_trunc_f32_u, 0xa9, F32, I32, -1.0f, 4294967296.0f, uint32_t)          \
  X(i32_trunc_f64_s, 0xaa, F64, I32, -2147483649.0, 2147483648.0, int32_t)    \
  X(i32_trunc_f64_u, 0xab, F64, I32, -1.0, 4294967296.0, uint32_t)            \
  X(i64_trunc_f32_s, 0xae, F32, I64, -9223373136366403584.0f, 9223372036854775808.0f, int64_t) \
  X(i64_trunc_f32_u, 0xaf, F32, I64, -1.0f, 18446744073709551616.0f, uint64_t) \
  X(i64_trunc_f64_s, 0xb0, F64, I64, -9223372036854777856.0, 9223372036854775808.0, int64_t) \
  X(i64_trunc_f64_u, 0xb1, F64, I64, -1.0, 18446744073709551616.0, uint64_t)

/* d = f(a, b) with no immediate form. */
#define TB__WOPS_BINARY(X)                                                    \
  X(f32_eq, 0x5b, F32, I32, a == b)                                           \
  X(f32_ne, 0x5c, F32, I32, a != b)                                           \
  X(f32_lt, 0x5d, F32, I32, a < b)                                            \
  X(f32_gt, 0x5e, F32, I32, a > b)                                            \
  X(f32_le, 0x5f, F32, I32, a <= b)                                           \
  X(f32_ge, 0x60, F32, I32, a >= b)                                           \
  X(f64_eq, 0x61, F64, I32, a == b)                                           \
  X(f64_ne, 0x62, F64, I32, a != b)                                           \
  X(f64_lt, 0x63, F64, I32, a < b)                                            \
  X(f64_gt, 0x64, F64, I32, a > b)                                            \
  X(f64_le, 0x65, F64, I32, a <= b)                                           \
  X(f64_ge, 0x66, F64, I32, a >= b)                                           \
  X(f32_min, 0x96, F32, F32, fmin32(a, b))                                    \
  X(f32_max, 0x97, F32, F32, fmax32(a, b))                                    \
  X(f32_copysign, 0x98, F32B, F32B, (a & 0x7fffffffu) | (b & 0x80000000u))    \
  X(f64_min, 0xa4, F64, F64, fmin64(a, b))                                    \
  X(f64_max, 0xa5, F64, F64, fmax64(a, b))                                    \
  X(f64_copysign, 0xa6, F64B, F64B, (a & 0x7fffffffffffffffu) | (b & 0x8000000000000000u))

/* d = f(a, b) that also have the form d = f(a, imm) (`name##_imm`). */
#define TB__WOPS_BINI(X)                                                      \
  X(i32_add, 0x6a, I32, I32, a + b)                                           \
  X(i32_sub, 0x6b, I32, I32, a - b)                                           \
  X(i32_mul, 0x6c, I32, I32, a * b)                                           \
  X(i32_and, 0x71, I32, I32, a & b)                                           \
  X(i32_or, 0x72, I32, I32, a | b)                                            \
  X(i32_xor, 0x73, I32, I32, a ^ b)                                           \
  X(i32_shl, 0x74, I32, I32, a << (b & 31))                                   \
  X(i32_shr_s, 0x75, I32, I32, (uint32_t)((int32_t)a >> (b & 31)))            \
  X(i32_shr_u, 0x76, I32, I32, a >> (b & 31))                                 \
  X(i64_add, 0x7c, I64, I64, a + b)                                           \
  X(i64_sub, 0x7d, I64, I64, a - b)                                           \
  X(i64_mul, 0x7e, I64, I64, a * b)                                           \
  X(i64_and, 0x83, I64, I64, a & b)                                           \
  X(i64_or, 0x84, I64, I64, a | b)                                            \
  X(i64_xor, 0x85, I64, I64, a ^ b)                                           \
  X(i64_shl, 0x86, I64, I64, a << (b & 63))                                   \
  X(i64_shr_s, 0x87, I64, I64, (uint64_t)((int64_t)a >> (b & 63)))            \
  X(i64_shr_u, 0x88, I64, I64, a >> (b & 63))                                \
  X(i32_rotl, 0x77, I32, I32, rotl32(a, b))                                   \
  X(i32_rotr, 0x78, I32, I32, rotr32(a, b))                                   \
  X(i64_rotl, 0x89, I64, I64, rotl64(a, b))                                   \
  X(i64_rotr, 0x8a, I64, I64, rotr64(a, b))                                   \
  X(f32_add, 0x92, F32, F32, a + b)                                           \
  X(f32_sub, 0x93, F32, F32, a - b)                                           \
  X(f32_mul, 0x94, F32, F32, a * b)                                           \
  X(f32_div, 0x95, F32, F32, a / b)                                           \
  X(f64_add, 0xa0, F64, F64, a + b)                                           \
  X(f64_sub, 0xa1, F64, F64, a - b)                                           \
  X(f64_mul, 0xa2, F64, F64, a * b)                                           \
  X(f64_div, 0xa3, F64, F64, a / b)

/* Integer comparisons: value forms (plain and `_imm`) and fused compare-and-branch
 * forms (`br_`name, `br_`name`_imm`, and their `_loop` variants). `br_add_`name`_imm_loop`
 * closes a counted loop in one dispatch: d = a + inc, then branch back (checking for
 * interruption) when cmp(d, imm): [op][d,a][inc64][imm64][T]; `br_addi_`name`_loop`
 * compares with a slot, [op][d,a][inc64][c,-][T], and `br_adds_`name`_loop` adds a
 * slot, [op][d,a][b,c][T]. */
#define TB__WOPS_CMP(X)                                                       \
  X(i32_eq, 0x46, I32, I32, a == b)                                           \
  X(i32_ne, 0x47, I32, I32, a != b)                                           \
  X(i32_lt_s, 0x48, I32, I32, (int32_t)a < (int32_t)b)                        \
  X(i32_lt_u, 0x49, I32, I32, a < b)                                          \
  X(i32_gt_s, 0x4a, I32, I32, (int32_t)a > (int32_t)b)                        \
  X(i32_gt_u, 0x4b, I32, I32, a > b)                                          \
  X(i32_le_s, 0x4c, I32, I32, (int32_t)a <= (int32_t)b)                       \
  X(i32_le_u, 0x4d, I32, I32, a <= b)                                         \
  X(i32_ge_s, 0x4e, I32, I32, (int32_t)a >= (int32_t)b)                       \
  X(i32_ge_u, 0x4f, I32, I32, a >= b)                                         \
  X(i64_eq, 0x51, I64, I32, a == b)                                           \
  X(i64_ne, 0x52, I64, I32, a != b)                                           \
  X(i64_lt_s, 0x53, I64, I32, (int64_t)a < (int64_t)b)                        \
  X(i64_lt_u, 0x54, I64, I32, a < b)                                          \
  X(i64_gt_s, 0x55, I64, I32, (int64_t)a > (int64_t)b)                        \
  X(i64_gt_u, 0x56, I64, I32, a > b)                                          \
  X(i64_le_s, 0x57, I64, I32, (int64_t)a <= (int64_t)b)                       \
  X(i64_le_u, 0x58, I64, I32, a <= b)                                         \
  X(i64_ge_s, 0x59, I64, I32, (int64_t)a >= (int64_t)b)                       \
  X(i64_ge_u, 0x5a, I64, I32, a >= b)

/* Integer division: binary shape, trapping (handlers written out in interp.c). */
#define TB__WOPS_DIV(X)                                                       \
  X(i32_div_s, 0x6d, I32, I32, 0)                                             \
  X(i32_div_u, 0x6e, I32, I32, 0)                                             \
  X(i32_rem_s, 0x6f, I32, I32, 0)                                             \
  X(i32_rem_u, 0x70, I32, I32, 0)                                             \
  X(i64_div_s, 0x7f, I64, I64, 0)                                             \
  X(i64_div_u, 0x80, I64, I64, 0)                                             \
  X(i64_rem_s, 0x81, I64, I64, 0)                                             \
  X(i64_rem_u, 0x82, I64, I64, 0)

/* Loads: X(name, opcode, result type, bytes, C type read, natural alignment log2).
 * Stores: X(name, opcode, operand type, bytes, C type written, alignment log2).
 * Each also has `name_ai`, whose address is an i32.add of a slot and an immediate, fused:
 * [op][d,a][offset32,imm32] (loads) / [op][a,v][offset32,imm32] (stores), and `name_aa`,
 * whose address is an i32.add of two slots: [op][d,a][b,offset32] / [op][a,v][b,offset32].
 * Loads also have `name_ait`/`name_aat`, the same when the sum is also kept in a local
 * (`local.tee` of the address): [op][d,a][offset32,imm32][x,-] / [op][d,a][b,offset32][x,-].
 * Stores also have `name_vi`, storing an immediate: [op][a,-][offset64][imm64], and
 * `name_vai`, the same at an address a + imm32: [op][a,imm32][offset64][imm64]. */
#define TB__WOPS_LOAD(X)                                                      \
  X(i32_load, 0x28, I32, 4, uint32_t, 2)                                      \
  X(i64_load, 0x29, I64, 8, uint64_t, 3)                                      \
  X(f32_load, 0x2a, F32, 4, uint32_t, 2)                                      \
  X(f64_load, 0x2b, F64, 8, uint64_t, 3)                                      \
  X(i32_load8_s, 0x2c, I32, 1, int8_t, 0)                                     \
  X(i32_load8_u, 0x2d, I32, 1, uint8_t, 0)                                    \
  X(i32_load16_s, 0x2e, I32, 2, int16_t, 1)                                   \
  X(i32_load16_u, 0x2f, I32, 2, uint16_t, 1)                                  \
  X(i64_load8_s, 0x30, I64, 1, int8_t, 0)                                     \
  X(i64_load8_u, 0x31, I64, 1, uint8_t, 0)                                    \
  X(i64_load16_s, 0x32, I64, 2, int16_t, 1)                                   \
  X(i64_load16_u, 0x33, I64, 2, uint16_t, 1)                                  \
  X(i64_load32_s, 0x34, I64, 4, int32_t, 2)                                   \
  X(i64_load32_u, 0x35, I64, 4, uint32_t, 2)

#define TB__WOPS_STORE(X)                                                     \
  X(i32_store, 0x36, I32, 4, uint32_t, 2)                                     \
  X(i64_store, 0x37, I64, 8, uint64_t, 3)                                     \
  X(f32_store, 0x38, F32, 4, uint32_t, 2)                                     \
  X(f64_store, 0x39, F64, 8, uint64_t, 3)                                     \
  X(i32_store8, 0x3a, I32, 1, uint8_t, 0)                                     \
  X(i32_store16, 0x3b, I32, 2, uint16_t, 1)                                   \
  X(i64_store8, 0x3c, I64, 1, uint8_t, 0)                                     \
  X(i64_store16, 0x3d, I64, 2, uint16_t, 1)                                   \
  X(i64_store32, 0x3e, I64, 4, uint32_t, 2)

/* Everything else, with layouts described at each handler in interp.c. */
#define TB__WOPS_MISC(X)                                                      \
  X(enter)             /* [op][frame_slots,nparams][nlocals,-] */             \
  X(enter_z)           /* same, zeroing slots [nparams, nlocals) */           \
  X(unreachable)       /* [op] */                                             \
  X(nop)               /* [op] */                                             \
  X(br)                /* [op][T] */                                          \
  X(br_loop)                                                                  \
  X(br_if)             /* [op][c,-][T] */                                     \
  X(br_if_loop)                                                               \
  X(br_unless)                                                                \
  X(br_unless_loop)                                                           \
  X(br_if64)           /* i64.eqz / i64 != 0 as conditions */                \
  X(br_if64_loop)                                                             \
  X(br_unless64)                                                              \
  X(br_unless64_loop)                                                         \
  X(br_table)          /* [op][idx,n][T0]..[Tn-1][Tdefault] */                \
  X(ret)               /* [op] */                                             \
  X(ret1)              /* [op][s,-]: slot 0 = s, then return */               \
  X(call)              /* [op][slot,k][entry][frame,nparams][nlocals,-]: own function k */ \
  X(call_import)       /* [op][slot,func] */                                  \
  X(call_indirect)     /* [op][slot,i][table,typeid] */                       \
  X(mov)               /* [op][d,a] */                                        \
  X(const)             /* [op][d,-][imm64] */                                 \
  X(select)            /* [op][d,c][a,b] */                                   \
  X(global_get)        /* [op][d,global] */                                   \
  X(global_set)        /* [op][a,global] */                                   \
  X(memory_size)       /* [op][d,-] */                                        \
  X(memory_grow)       /* [op][d,a] */                                        \
  X(memory_fill)       /* [op][d,v][n,-] */                                   \
  X(memory_copy)       /* [op][d,s][n,-] */                                   \
  X(memory_init)       /* [op][d,s][n,seg] */                                 \
  X(data_drop)         /* [op][seg,-] */                                      \
  X(table_get)         /* [op][d,i][table,-] */                               \
  X(table_set)         /* [op][i,v][table,-] */                               \
  X(table_size)        /* [op][d,table] */                                    \
  X(table_grow)        /* [op][d,init][n,table] */                            \
  X(table_fill)        /* [op][i,v][n,table] */                               \
  X(table_copy)        /* [op][d,s][n,-][dtable,stable] */                    \
  X(table_init)        /* [op][d,s][n,seg][table,-] */                        \
  X(elem_drop)         /* [op][seg,-] */                                      \
  X(ref_func)          /* [op][d,func] */                                     \
  X(ref_is_null)       /* [op][d,a] */

/* The enum of internal opcodes (indices into the interpreter's handler table). */
enum {
#define TB__WOP_E1(name, ...) TB__WOP_##name,
#define TB__WOP_EBINI(name, ...) TB__WOP_##name, TB__WOP_##name##_imm,
#define TB__WOP_ELOAD(name, ...) \
  TB__WOP_##name, TB__WOP_##name##_ai, TB__WOP_##name##_aa, TB__WOP_##name##_ait, TB__WOP_##name##_aat,
#define TB__WOP_ESTORE(name, ...) \
  TB__WOP_##name, TB__WOP_##name##_ai, TB__WOP_##name##_vi, TB__WOP_##name##_aa, TB__WOP_##name##_vai,
#define TB__WOP_ECMP(name, ...)                                                        \
  TB__WOP_##name, TB__WOP_##name##_imm, TB__WOP_br_##name, TB__WOP_br_##name##_imm, \
      TB__WOP_br_##name##_loop, TB__WOP_br_##name##_imm_loop, TB__WOP_br_add_##name##_imm_loop,             \
      TB__WOP_br_addi_##name##_loop, TB__WOP_br_adds_##name##_loop,
  TB__WOPS_MISC(TB__WOP_E1) TB__WOPS_UNARY(TB__WOP_E1) TB__WOPS_SAT(TB__WOP_E1) TB__WOPS_TRUNC(TB__WOP_E1)
      TB__WOPS_BINARY(TB__WOP_E1) TB__WOPS_BINI(TB__WOP_EBINI) TB__WOPS_CMP(TB__WOP_ECMP)
          TB__WOPS_DIV(TB__WOP_E1) TB__WOPS_LOAD(TB__WOP_ELOAD) TB__WOPS_STORE(TB__WOP_ESTORE)
#undef TB__WOP_E1
#undef TB__WOP_ELOAD
#undef TB__WOP_ESTORE
#undef TB__WOP_EBINI
#undef TB__WOP_ECMP
              TB__WOP_COUNT
};

/**
 * The interpreter's handler table, TB__WOP_COUNT entries indexed by TB__WOP_*: the
 * addresses compile.c writes into the first cell of each instruction. Static storage,
 * valid for the life of the process; thread-safe.
 */
const void *const *tb__wasm_handlers(void);

#endif /* TB_WASM_INTERP_OPS_H */
