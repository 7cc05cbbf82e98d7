# ewtp front door: thin wrapper over CMake (DESIGN.md "Fixed interfaces").
#   make deps   install missing Debian 12 packages (apt-get; no-op when present)
#   make build  build into build/ (no tests: needs none of the test-only packages)
#   make run    build and run the gateway in the foreground with conf/dev.conf
#   make test   build with ASan+UBSan into build-test/ and run every test
# build/ is configured with BUILD_TESTING=OFF; build-test/ with the tests, whose configure
# fails naming any missing test tool (tests/CMakeLists.txt) instead of skipping tests.
#   make tsan   build with ThreadSanitizer into build-tsan/ and run the thread-sensitive tests
#   make fuzz   build the libFuzzer targets with clang into build-fuzz/ and run each FUZZ_SECONDS
#   make docs   the SDK reference (Doxygen HTML of sdk/include) into build/docs/html
#   make package       the Debian packages into build/deb/ (scripts/package.sh)
#   make package-test  build them, install them on this machine, check, purge (as root)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run test tsan docs clean format package package-test bench fuzz

all: build

deps:
	scripts/deps.sh test

# The deps.sh profile: `build` alone; `run` (via the target-specific variable, which also
# applies to the build prerequisite) adds what the simulators need.
DEPS_PROFILE = build
build:
	scripts/deps.sh $(DEPS_PROFILE)
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF
	cmake --build build -j$(JOBS)

run: DEPS_PROFILE = run
run: build
	scripts/run.sh

test:
	scripts/deps.sh test
	cmake -S . -B build-test -DEWTP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-test -j$(JOBS)
	cd build-test && ctest --output-on-failure -j$(JOBS)

# The tests where threads meet: the store and dispatcher from workers, reload under load, the
# API, delivery and kill -9. tests/tsan.supp silences only uninstrumented third-party libraries
# (never daemon/ or sdk/); halt_on_error=0 lists every report of a run, and TSan's exit status
# 66 still fails the test. TSAN_TESTS overrides the selection (a ctest -R regex).
TSAN_TESTS ?= ^(unit/test_store|unit/test_dispatch|integration/(reload_under_load|http_api|dispatch_zz|crash_daemon))$$
tsan:
	scripts/deps.sh test
	cmake -S . -B build-tsan -DEWTP_TSAN=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && \
	  TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp:halt_on_error=0:second_deadlock_stack=1:history_size=4" \
	  ctest --output-on-failure -R '$(TSAN_TESTS)'

# libFuzzer (tests/fuzz/README.md): clang build in build-fuzz/, seeds from the vectors and
# samples, every target FUZZ_SECONDS (10 minutes) one after the other; executions and findings
# per target in build-fuzz/summary.md. FUZZ_TARGETS picks some (e.g. "http validate-cn").
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=
fuzz:
	scripts/deps.sh fuzz
	tests/fuzz/run.sh -t $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Throughput, latency, drain and signing figures as ratios to baselines of the same run
# (tests/bench/bench.sh, ~5 min on 2 cores): build/bench/report.md and report.json.
bench:
	scripts/deps.sh test
	tests/bench/bench.sh

# docs/Doxyfile reads sdk/include/ewtp, sdk/README.md and docs/plugin-guide.md.
docs:
	scripts/deps.sh docs
	mkdir -p build/docs
	doxygen docs/Doxyfile
	@echo "docs: build/docs/html/index.html"

# Copies the tree to build/pkg/, runs dpkg-buildpackage -us -uc -b there (nocheck, parallel=2)
# and collects the .deb files in build/deb/.
package:
	scripts/deps.sh package
	scripts/package.sh

# tests/package/debs.sh (ctest package/debs in make test): its own build folder under /tmp,
# installs the packages with apt-get, runs the installed ewtpd -t, builds the installed
# template out of tree, plugin check, purge; cleans up after itself.
package-test:
	scripts/deps.sh test
	tests/package/debs.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-test build-tsan
