# The two commands of README.md. Each does its own set-up: dependencies, configure, build.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
SUITE ?= configs/suites/quick.json
OUT ?= reports/latest.json

.PHONY: run test build deps configure asan clean

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

clean:
	rm -rf $(BUILD_DIR) build-asan
