# make demo: set up everything on a fresh Debian 12 machine (as root) and back up the sandbox.
# make test: sanity, unit, integration and Molecule tests, ansible-lint (tools/test.sh, two lanes).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
COLLECTIONS := $(CURDIR)/.build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/stackops/runbook
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: demo test host venv collection docker images sandbox-up sandbox-down sandbox-status \
	sanity unit integration molecule prometheus lint benchmark clean

demo: sandbox-up
	ansible-playbook playbooks/backup.yml -i inventories/sandbox
	ansible-playbook playbooks/restore_drill.yml -i inventories/sandbox
	ansible-playbook playbooks/health.yml -i inventories/sandbox
	tools/sandbox.sh report
	ansible-playbook playbooks/status.yml -i inventories/sandbox

# everything CI runs, in two lanes (tools/test.sh); the targets below run one suite each
test: venv collection docker images
	tools/test.sh

host:
	tools/setup-host.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt | host
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

collection:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn ../../../.. $(COLLECTION_LINK)

docker: host
	tools/ensure-docker.sh

images: docker
	tools/build-images.sh

sandbox-up: venv collection images
	tools/sandbox.sh up

sandbox-down:
	tools/sandbox.sh down

sandbox-status:
	tools/sandbox.sh status

sanity: venv collection
	tools/sanity.sh

unit: venv collection
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: venv collection images
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

MOLECULE_SCENARIOS ?= prerequisites backup restore restore_drill health deploy migrate rollback rotate_secrets incident maintenance

molecule: venv collection images
	set -a; . .build/images.env; set +a; \
	for scenario in $(MOLECULE_SCENARIOS); do molecule test -s $$scenario || exit 1; done

# the alerting rules: promtool's syntax check and its unit tests (every alert firing and not)
prometheus:
	promtool check rules observability/prometheus/stackops_runbook.rules.yml
	cd observability/prometheus/tests && promtool test rules *.yml

lint: venv collection
	ansible-lint --profile production

benchmark: venv collection images
	$(PY) benchmarks/backup.py
	$(PY) benchmarks/restore.py
	$(PY) benchmarks/health.py

clean: sandbox-down
	rm -rf .build
