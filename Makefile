# ewtp front door: thin wrapper over CMake (DESIGN.md "Fixed interfaces").
#   make deps   install missing Debian 12 packages (apt-get; no-op when present)
#   make build  build into build/
#   make run    build and run the gateway in the foreground with conf/dev.conf
#   make test   build with ASan+UBSan into build-test/ and run every test
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run test clean format

all: build

deps:
	scripts/deps.sh test

build:
	scripts/deps.sh build
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build -j$(JOBS)

run: build
	scripts/run.sh

test:
	scripts/deps.sh test
	cmake -S . -B build-test -DEWTP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-test -j$(JOBS)
	cd build-test && ctest --output-on-failure -j$(JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-test
