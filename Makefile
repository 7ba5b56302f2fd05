# The two commands of README.md. Each does its own set-up: dependencies, configure, build.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
SUITE ?= configs/suites/quick.json
OUT ?= reports/latest.json

.PHONY: run test build deps configure asan fuzz check-readme check-fallback clean

run: build
	./$(BUILD_DIR)/capbench run $(SUITE) --out $(OUT)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

configure: deps
	@test -f $(BUILD_DIR)/build.ninja || \
	  cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

deps:
	@scripts/install-deps.sh

# AddressSanitizer + UndefinedBehaviorSanitizer build of everything but libtorch
# (libtorch's own code is not built with sanitizers and reports false positives).
asan: deps
	cmake --preset asan && cmake --build --preset asan -j $(JOBS) && ctest --preset asan

# Thousands of mutants of every input capbench reads (make test runs a few hundred).
fuzz: build
	CAPBENCH_FUZZ_MUTANTS=$(or $(MUTANTS),3000) ./$(BUILD_DIR)/tests/capbench_tests --gtest_filter='Fuzz.*'

# Every build/capbench command of README.md, exactly as written (make test shortens the runs).
check-readme: build
	tests/readme_commands.sh . $(BUILD_DIR) --as-written

# The build with a failing optional package (oneDNN without OpenCL): configured, built, tested.
check-fallback: deps
	tests/configure_fallback.sh . build-fallback --build

clean:
	rm -rf $(BUILD_DIR) build-asan build-fallback
