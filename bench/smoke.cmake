# bench/smoke.cmake — the benchmark suite's smoke test, so that it cannot rot.
#
# Include it from the top-level CMakeLists.txt, after add_subdirectory(src) (it needs
# the tabbify target):  include(bench/smoke.cmake)
#
# bench_smoke builds every kernel natively and to wasm32 at the quick size (-DQUICK)
# into this build tree, runs each once natively and once on this build's tabbify, and
# fails if any checksum differs. It times nothing: benchmarks are never assertions.
# It needs only clang and wasm-ld (scripts/setup installs both); TB_BENCH_ENGINES is
# cleared so that a developer's extra engines do not leak into the test.
add_test(NAME bench_smoke
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run --quick --check-only
                 --tabbify $<TARGET_FILE:tabbify>
                 --dir ${CMAKE_BINARY_DIR}/bench-smoke)
set_tests_properties(bench_smoke PROPERTIES
                     TIMEOUT 900
                     LABELS bench
                     ENVIRONMENT "TB_BENCH_ENGINES=;BENCH_TIMEOUT=300")
