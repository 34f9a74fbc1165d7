# Mouchard: the README's two commands are `make demo` and `make test`.
# Both start from a fresh Debian 12 machine: they install what they need (Debian packages when
# run as root, else they say which to install) and a virtual environment in .venv.
# Installing Debian packages starts no service (policy-rc.d): the tests start their own, on
# loopback or inside network namespaces, and stop them by pid.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEBS := influxdb influxdb-client mosquitto mosquitto-clients tshark libpcap0.8-dev ieee-data curl iproute2 tcpdump ethtool tcpreplay dnsmasq-base nftables conntrack openssl avahi-daemon victoria-metrics python3-venv
DEMO_DIR := .demo
DEMO_PORT ?= 18086

.PHONY: help deps debs venv lint typecheck test pytest demo demo-stop bench fuzz clean ansible-check

help:
	@echo "make demo   - replay the sample lab capture into a local InfluxDB and show the devices"
	@echo "make test   - install what is needed, then ruff, mypy and the test suite (real InfluxDB, Mosquitto, tshark)"
	@echo "make bench  - replay benchmark against NFStream and dpkt (1,000,000 packets)"
	@echo "make fuzz   - coverage-guided fuzzing of every parser (FUZZ_SECONDS per harness, default 300)"

deps: debs venv

debs:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:" $$missing; \
	    guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	    rc=$$?; [ -n "$$guard" ] && rm -f /usr/sbin/policy-rc.d; [ $$rc = 0 ] || exit $$rc; \
	  else \
	    echo "missing Debian packages; run: sudo apt-get install $$missing" >&2; exit 2; \
	  fi; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check gateway tests bench fuzz

typecheck: venv
	$(BIN)/mypy

pytest: deps
	$(BIN)/pytest -q

test: deps lint typecheck pytest

demo: deps
	@mkdir -p $(DEMO_DIR)
	$(BIN)/python -m gateway.samples.lab $(DEMO_DIR)/lab.pcap --labels $(DEMO_DIR)/labels.yaml
	@scripts/influxd-local start $(DEMO_DIR)/influxdb $(DEMO_PORT) >/dev/null
	@printf 'state_dir: %s/state\ninfluxdb:\n  url: http://127.0.0.1:%s\n  database: mouchard\n' "$(CURDIR)/$(DEMO_DIR)" $(DEMO_PORT) > $(DEMO_DIR)/mouchard.yaml
	@cat $(DEMO_DIR)/labels.yaml >> $(DEMO_DIR)/mouchard.yaml
	$(BIN)/mouchard replay $(DEMO_DIR)/lab.pcap --config $(DEMO_DIR)/mouchard.yaml
	@echo
	@echo "The data is in InfluxDB on 127.0.0.1:$(DEMO_PORT), database 'mouchard'. Look at it with:"
	@echo "  influx -port $(DEMO_PORT) -database mouchard -execute 'SELECT sum(bytes_out) AS up, sum(bytes_in) AS down FROM traffic GROUP BY device'"
	@echo "  influx -port $(DEMO_PORT) -database mouchard -execute 'SELECT sum(bytes_out) FROM traffic WHERE party != '\''local'\'' GROUP BY device, host'"
	@echo "Stop that InfluxDB with: make demo-stop"

demo-stop:
	scripts/influxd-local stop $(DEMO_DIR)/influxdb

bench: deps
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/replay.py

# ansible-lint (production profile) and the syntax check; tests/ansible runs them too, in make test
ansible-check: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ansible-lint --nocolor -c ansible/.ansible-lint ansible/
	cd ansible && ANSIBLE_CONFIG=ansible.cfg ../$(BIN)/ansible-playbook --syntax-check site.yml

FUZZ_SECONDS ?= 300
fuzz: venv
	$(BIN)/pip install -q atheris
	$(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS) --jobs 1

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .ruff_cache .pytest_cache
