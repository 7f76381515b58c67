# Tabbify — the two commands of the README, and a few more for developers.
#
#   make up      build, then run the platform on this machine with the demo app
#   make test    install what is missing, build (release + ASan/UBSan) and run every test
#   make fuzz    build the libFuzzer targets with clang (build-fuzz/) and fuzz each for FUZZ_SECONDS
#
# Every target runs scripts/setup first; it only calls apt-get when a package is missing.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup build build-asan test test-release test-asan up fuzz clean

all: build

setup:
	@scripts/setup

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DTB_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DTB_WERROR=ON -DTB_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

test-release: build
	@echo "== tests, release build"
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-asan: build-asan
	@echo "== tests, ASan + UBSan build"
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

test: test-release test-asan

# The platform on this machine: node, supervisor, event log and artifact store in one
# process, with the demo app deployed (it prints the curl line). Ctrl-C stops it.
up: build
	@$(BUILD)/src/tabbify/tabbify up

fuzz: setup
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -G Ninja -DTB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@for f in $(FUZZ_BUILD)/fuzz/fuzz_*; do \
	  t=$${f##*/fuzz_}; mkdir -p $(FUZZ_BUILD)/corpus-$$t; \
	  echo "== fuzzing $$t for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $(FUZZ_BUILD)/corpus-$$t fuzz/$$t/corpus || exit 1; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
