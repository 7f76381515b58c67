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

# bench_proxy_smoke runs bench/proxy/run.sh --check-only on this build: every path of the
# proxy benchmark once (the runner, tabbify-node and nginx each under wrk for 1 s, one
# cold start; ~7 s). It fails on a wrong answer (a non-2xx status, a socket error, a
# failed cold start), never on a figure, and is skipped (exit 2) where wrk or nginx is
# not installed: nginx comes only with `scripts/setup --bench`, which CI does not run.
if(TB_WASI_FOUND) # the demo app it deploys needs the wasm32-wasi toolchain
  add_test(NAME bench_proxy_smoke
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/proxy/run.sh ${CMAKE_BINARY_DIR} --check-only)
  set_tests_properties(bench_proxy_smoke PROPERTIES
                       TIMEOUT 120
                       LABELS bench
                       SKIP_RETURN_CODE 2)
endif()

# bench_docker_smoke runs bench/docker/run.sh --check-only on this build: one round of each
# cold start (docker run, tabbify deploy, a scale-to-zero wake) against a private dockerd,
# ~10 s. It fails on a wrong answer (a non-200, a failed deploy or start), never on a
# figure, and is skipped (exit 2) where no Docker daemon can run (not root, no docker.io).
add_test(NAME bench_docker_smoke
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/docker/run.sh ${CMAKE_BINARY_DIR} --check-only)
set_tests_properties(bench_docker_smoke PROPERTIES
                     TIMEOUT 120
                     LABELS bench
                     SKIP_RETURN_CODE 2)
