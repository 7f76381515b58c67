# cmake/wasi.cmake — compiling C guests for wasm32-wasi with Debian's clang and wasi-libc.
#
# Sets TB_WASI_FOUND, TB_WASI_CC, TB_WASI_CXX, TB_WASI_SYSROOT and TB_WASI_FLAGS, and
# defines tb_wasi_program(OUT SRC [FLAGS...]) which compiles one C file into OUT at build
# time. Used by the demo app (examples/) and the WASI tests (tests/wasi/).
find_program(TB_WASI_CC NAMES clang clang-14)
find_program(TB_WASI_CXX NAMES clang++ clang++-14)
if(TB_WASI_CC AND EXISTS /usr/lib/wasm32-wasi/libc.a AND EXISTS /usr/include/wasm32-wasi/stdio.h)
  set(TB_WASI_FOUND ON)
else()
  set(TB_WASI_FOUND OFF)
  message(WARNING "clang or wasi-libc is missing: no WebAssembly guests are built (scripts/setup installs them)")
  return()
endif()

# A sysroot holding only wasi-libc: --sysroot=/usr would also put the host's /usr/include
# on the guest's include path.
set(TB_WASI_SYSROOT ${CMAKE_BINARY_DIR}/wasi-sysroot)
file(MAKE_DIRECTORY ${TB_WASI_SYSROOT}/include ${TB_WASI_SYSROOT}/lib)
file(CREATE_LINK /usr/include/wasm32-wasi ${TB_WASI_SYSROOT}/include/wasm32-wasi SYMBOLIC)
file(CREATE_LINK /usr/lib/wasm32-wasi ${TB_WASI_SYSROOT}/lib/wasm32-wasi SYMBOLIC)
set(TB_WASI_FLAGS --target=wasm32-wasi --sysroot=${TB_WASI_SYSROOT} -O2 -Wall -Wextra -Werror -Wno-unused-parameter)

function(tb_wasi_program out src)
  add_custom_command(OUTPUT ${out}
                     COMMAND ${TB_WASI_CC} ${TB_WASI_FLAGS} ${ARGN} ${src} -o ${out}
                     DEPENDS ${src}
                     COMMENT "wasm32-wasi: ${out}" VERBATIM)
endfunction()
