# hpcansible: `make demo` and `make test` work on a fresh Debian 12 machine, as root.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

# System packages: the testbed (SLURM, munge, sshd), the real exporters and services,
# the load generators the client is measured against, and the browser that the report's
# test looks at report.html with (headless); the databases, their exporters and native load
# tools (issue 10), and a C compiler for the native engines' secret-argument preload.
APT_PACKAGES := slurmctld slurmd slurm-client munge openssh-server openssh-client \
	prometheus prometheus-node-exporter prometheus-process-exporter redis-server \
	nginx wrk iproute2 util-linux procps python3-venv git chromium \
	postgresql mariadb-server sysbench redis-tools prometheus-postgres-exporter \
	prometheus-mysqld-exporter gcc libc6-dev

.PHONY: help demo test system-packages venv testbed testbed-down lint unit integration \
	molecule build clean collection-link client-wheels

help:
	@echo "make demo   install everything, bring the testbed up, run the default session"
	@echo "make test   install what is needed, then lint, unit, integration, molecule, build"

system-packages: .apt.stamp
.apt.stamp: Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt-get install $$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@touch $@

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cli,dev,llm,services]'
	@touch $@

testbed: system-packages venv
	$(PY) -m hpcansible testbed up

testbed-down: venv
	$(PY) -m hpcansible testbed down

# ansible-lint and molecule (ansible-compat) install a copy of the collection into
# .ansible/collections unless a symlink to this checkout is already there: without it they
# would test a stale copy after an edit.
ANSIBLE_CACHE_LINK := .ansible/collections/ansible_collections/hpcansible/hpc
collection-link:
	@if [ ! -L $(ANSIBLE_CACHE_LINK) ]; then rm -rf $(ANSIBLE_CACHE_LINK); \
		mkdir -p $(dir $(ANSIBLE_CACHE_LINK)) && ln -s ../../../.. $(ANSIBLE_CACHE_LINK); fi

lint: venv collection-link
	$(VENV)/bin/ruff check python tests plugins molecule
	$(VENV)/bin/ruff format --check python tests plugins molecule
	$(VENV)/bin/ansible-lint --profile production

unit: venv
	$(PYTEST) -q tests/unit

# The client's own environment, as a compute node gets it: the project without its `cli`
# extra, from wheels (the integration test installs it with pip --no-index from here).
CLIENT_WHEELS := build/client-wheels
client-wheels: $(CLIENT_WHEELS)/.built
$(CLIENT_WHEELS)/.built: pyproject.toml
	rm -rf $(CLIENT_WHEELS)
	$(PY) -m pip wheel -q -w $(CLIENT_WHEELS) .
	@touch $@

integration: testbed client-wheels
	$(PYTEST) -q tests/integration

molecule: testbed collection-link
	@for scenario in $$(cd molecule && ls */molecule.yml | cut -d/ -f1); do \
		echo "== molecule test -s $$scenario"; \
		$(VENV)/bin/molecule test -s $$scenario || exit 1; \
	done

build: venv
	rm -rf build/collection && mkdir -p build/collection
	$(VENV)/bin/ansible-galaxy collection build --force --output-path build/collection .

# The default session; once its client has finished, the report (live), and the session left
# running so that the tunnel it prints shows Prometheus (`python -m hpcansible stop ID` ends it).
demo: testbed
	$(PY) -m hpcansible run --report

test: system-packages venv lint unit testbed integration molecule build

clean:
	rm -rf build .apt.stamp
