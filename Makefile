# Cardinal: the user's commands. Each installs missing Debian packages first.
#   make run    start Prometheus (own data dir under build/) and Cardinal in front of it
#               UPSTREAM=<remote-write url> fronts an existing receiver instead
#   make test   unit tests + integration tests against real Prometheus and vmagent
#   make build  release build; the binary is build/cardinal

SHELL := /bin/bash
BUILD_DEPS := cmake ninja-build g++ pkg-config libboost-dev libprotobuf-dev protobuf-compiler \
  libsnappy-dev libre2-dev prometheus-cpp-dev nlohmann-json3-dev doctest-dev libyaml-cpp-dev libssl-dev ccache
# systemd, yq, docker-compose: tests/integration/deploy_test.cpp (systemd-analyze, YAML to JSON, Compose file check)
PEER_DEPS := prometheus victoria-metrics systemd yq docker-compose
# chromium: tests/integration/web_test.cpp renders the status page at GET / in headless Chromium
PEER_DEPS += chromium
# openssl, apache2-utils: tests/integration/security_test.cpp makes certificates (openssl CLI) and
# bcrypt hashes for Prometheus' --web.config.file (htpasswd)
PEER_DEPS += openssl apache2-utils
JOBS ?= $(shell nproc)

.PHONY: build test run unit integration deps peer-deps clean

build: deps
	cmake --preset release >/dev/null
	cmake --build build -j $(JOBS)

test: build peer-deps
	./build/cardinal_unit_tests
	./build/cardinal_integration_tests

unit: build
	./build/cardinal_unit_tests

integration: build peer-deps
	./build/cardinal_integration_tests

run: build peer-deps
	./deploy/run-local.sh

deps:
	@./deploy/apt-install.sh $(BUILD_DEPS)

peer-deps:
	@./deploy/apt-install.sh $(PEER_DEPS)

clean:
	rm -rf build
