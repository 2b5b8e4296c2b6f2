# Canvass: `make run` starts the suite, `make test` runs the tests. Both do all the set-up first:
# the Python environment (uv, from uv.lock), a local PostgreSQL + PostGIS cluster unless DATABASE_URL is set,
# and the migrations.

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv

REGISTRY_API_PORT ?= 8001
GEO_QUERY_PORT ?= 8002
REQUESTS_API_PORT ?= 8003
COMMUNITY_API_PORT ?= 8004
# The live video relay (services/live_relay).
LIVE_RELAY_PORT ?= 8005
export REGISTRY_API_PORT GEO_QUERY_PORT REQUESTS_API_PORT COMMUNITY_API_PORT LIVE_RELAY_PORT
# The web portal (services/portal, built from web/).
PORTAL_PORT ?= 8000
export PORTAL_PORT

# Without DATABASE_URL, everything runs on the project-local cluster (scripts/localdb.sh, port CANVASS_PG_PORT).
ifeq ($(strip $(DATABASE_URL)),)
LOCAL_DB := 1
export MIGRATIONS_DATABASE_URL := $(shell bash scripts/localdb.sh url)
export DATABASE_URL := $(shell bash scripts/localdb.sh svc-url)
export GEO_QUERY_DATABASE_URL ?= $(shell bash scripts/localdb.sh geo-url)
# The key store of the per-registration data keys: its own database and role on the local cluster.
export CANVASS_KEYSTORE_URL ?= $(shell bash scripts/localdb.sh keystore-url)
endif

# Settings default to production (placeholder keys refused); the local suite runs as development.
export CANVASS_ENV ?= development

ROLE ?= investigator
AGENCY ?= demo

.PHONY: help setup env db migrate demo portal run camera test contract-lint stop token audit-verify audit-anchor audit-verify-export audit-archive openapi openapi-release settings-doc lint format bench bench-floor clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.tools/bin/uv:
	@bash scripts/ensure_debian.sh python3=python3 py:ensurepip=python3-venv
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	$(UV) sync --frozen --python python3
	@touch $@

env: .venv/.synced ## build the Python environment from uv.lock

db: ## start the local PostGIS cluster (skipped when DATABASE_URL is set)
ifdef LOCAL_DB
	@bash scripts/localdb.sh start
else
	@echo "using DATABASE_URL (no local cluster)"
endif

migrate: env db ## apply the migrations
	$(PY) -m alembic upgrade head

setup: migrate ## the Python environment, the local database (unless DATABASE_URL is set) and the migrations

demo: setup ## load the demo agency and a few hundred cameras (idempotent)
	$(PY) scripts/demo_data.py

# The portal's npm packages, from web/package-lock.json (node and npm from Debian when missing; no package may
# download a browser or a binary of its own).
web/node_modules/.installed: web/package.json web/package-lock.json
	@bash scripts/ensure_debian.sh node=nodejs npm=npm
	cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

# The development OpenID provider (tools/oidc-dev: npm's oidc-provider), for `make run` and the tests only.
tools/oidc-dev/node_modules/.installed: tools/oidc-dev/package.json tools/oidc-dev/package-lock.json
	@bash scripts/ensure_debian.sh node=nodejs npm=npm
	cd tools/oidc-dev && npm ci --no-audit --no-fund
	@touch $@

portal: web/node_modules/.installed ## build the web portal into web/dist (types from openapi/, type check, vite)
	cd web && npm run build

run: demo portal tools/oidc-dev/node_modules/.installed ## start the portal on 127.0.0.1:8000, the services and the live relay (and the requests worker); Ctrl-C stops them
	$(PY) scripts/run_suite.py

camera: env ## a synthetic RTSP camera (FFmpeg's test pattern, GStreamer's RTSP server) to point an edge agent at; Ctrl-C stops it
	@bash scripts/ensure_debian.sh ffmpeg=ffmpeg pkg:python3-gi=python3-gi pkg:gir1.2-gst-rtsp-server-1.0=gir1.2-gst-rtsp-server-1.0 pkg:gstreamer1.0-plugins-good=gstreamer1.0-plugins-good pkg:gstreamer1.0-plugins-bad=gstreamer1.0-plugins-bad
	$(PY) scripts/demo_camera.py

# Redocly's OpenAPI linter, pinned by tools/contract-lint/package-lock.json (npm ci: from the npm registry only).
REDOCLY := tools/contract-lint/node_modules/.bin/redocly
export REDOCLY_TELEMETRY := off
export REDOCLY_SUPPRESS_UPDATE_NOTICE := true

$(REDOCLY): tools/contract-lint/package.json tools/contract-lint/package-lock.json
	cd tools/contract-lint && npm ci --no-audit --no-fund
	@touch $@

contract-lint: $(REDOCLY) ## Redocly's linter on openapi/*.json: recommended rules, any finding fails (tools/contract-lint/redocly.yaml)
	$(REDOCLY) lint --config tools/contract-lint/redocly.yaml openapi/registry_api.json openapi/geo_query.json openapi/requests_api.json openapi/community_api.json openapi/live_relay.json

# The test processes `make test` runs side by side (pytest-xdist, a test file at a time per process): each makes its
# own database, key store, ports, services and browser, so they share only the cluster. TEST_WORKERS=1 runs one.
TEST_WORKERS ?= 3

# The service-level tests `make test` runs a second time with every service and the worker behind PgBouncer in
# transaction mode (pytest --through-pgbouncer): each service's main paths, the worker, evidence and imports.
POOLER_TESTS := tests/registry/test_registration.py tests/geo_query/test_search.py tests/requests/test_lifecycle.py \
	tests/requests/test_worker.py tests/requests/test_evidence.py tests/community/test_tips.py \
	tests/imports/test_fast_path.py tests/imports/test_jobs.py::test_a_jobs_finished_at_is_when_it_ended_not_when_its_writing_began

# Checkov, the static security scan of the Kubernetes manifests (tests/test_kubernetes.py), in an environment of
# its own (tools/k8s-scan/uv.lock): its pins would hold back the project's own dependencies.
tools/k8s-scan/.venv/.synced: tools/k8s-scan/pyproject.toml tools/k8s-scan/uv.lock | $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/tools/k8s-scan/.venv $(UV) sync --frozen --python python3 --project tools/k8s-scan
	@touch $@

test: env db contract-lint portal tools/oidc-dev/node_modules/.installed tools/k8s-scan/.venv/.synced ## the whole test suite against a real PostGIS and real HTTP (GDAL's OGC API client, docker-compose config and the portal in Chromium among them)
	@bash scripts/ensure_debian.sh ogrinfo=gdal-bin docker-compose=docker-compose chromium=chromium ffmpeg=ffmpeg /usr/sbin/pgbouncer=pgbouncer psql=postgresql-client
	@# The live-video tests' synthetic camera: GStreamer's RTSP server through Debian's python3 (tests/live).
	@bash scripts/ensure_debian.sh pkg:python3-gi=python3-gi pkg:gir1.2-gst-rtsp-server-1.0=gir1.2-gst-rtsp-server-1.0 pkg:gstreamer1.0-plugins-good=gstreamer1.0-plugins-good pkg:gstreamer1.0-plugins-bad=gstreamer1.0-plugins-bad
	cd web && npm run check
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS)
	$(if $(PYTEST_ARGS),,$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --through-pgbouncer $(POOLER_TESTS))

stop: ## stop the local database cluster
	@bash scripts/localdb.sh stop

token: env ## print a development token: make token ROLE=investigator AGENCY=demo
	@$(PY) scripts/mint_token.py --role "$(ROLE)" --agency "$(AGENCY)"

audit-verify: env ## verify the audit trail's hash chain (ANCHORS=file: and that it passes those anchors)
	$(PY) scripts/audit_verify.py $(if $(ANCHORS),--anchors $(ANCHORS))

audit-anchor: env ## print the audit chain's head as an anchor line, to keep outside the database
	@$(PY) scripts/audit_verify.py --anchor

audit-verify-export: env ## verify an exported audit file offline (FILE=export, ANCHORS=file: and those anchors)
	$(PY) scripts/audit_verify_export.py $(FILE) $(if $(ANCHORS),--anchors $(ANCHORS))

audit-archive: env ## as the database's owner: archive the audit trail's months older than the retention to OUT=dir, anchor, drop them (BEFORE=YYYY-MM-DD, default 7 years ago, never under 1 year)
	$(PY) scripts/audit_archive.py --out $(OUT) $(if $(BEFORE),--before $(BEFORE))

openapi: env ## regenerate the committed contracts in openapi/
	$(PY) scripts/export_openapi.py

settings-doc: env ## regenerate docs/settings.md, the table of every setting, from the settings classes
	$(PY) scripts/settings_doc.py

openapi-release: openapi ## record the current contracts as released (breaking changes are then flagged)
	mkdir -p openapi/released && cp openapi/registry_api.json openapi/geo_query.json openapi/requests_api.json openapi/live_relay.json openapi/released/

lint: env ## ruff (lint + format check), mypy and the dead-code check (vulture: scripts/dead_code.py)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy shared services migrations scripts tests
	.venv/bin/python scripts/dead_code.py

format: env ## apply ruff's fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench: env db portal ## measure geo_query and the bulk import against raw asyncpg, tipg and ogr2ogr, registration writes, and the portal's first page and registration (QUICK=1: smaller, < 2 min and about 1 for its tiles; ONLY=queries|imports|registrations|portal|community|audit|coverage|tiles|live, SHAPES=nearest,bbox100: a partial run; SCALE=10: the cost curve alone, 1 and 10 million cameras, about 25 min)
	@bash scripts/ensure_debian.sh chromium=chromium
ifneq ($(ONLY),live)
	$(PY) -m bench.run $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY)) $(if $(SHAPES),--shapes $(SHAPES)) $(if $(SCALE),--scale $(SCALE))
endif
ifeq ($(filter-out live,$(ONLY))$(SCALE),)
	@# The live relay's figures, on the live tests' real parts (the synthetic camera, edge agents, the relay), 2 min.
	@bash scripts/ensure_debian.sh ffmpeg=ffmpeg pkg:python3-gi=python3-gi pkg:gir1.2-gst-rtsp-server-1.0=gir1.2-gst-rtsp-server-1.0 pkg:gstreamer1.0-plugins-good=gstreamer1.0-plugins-good pkg:gstreamer1.0-plugins-bad=gstreamer1.0-plugins-bad
	$(PY) -m pytest -p tests.conftest -p tests.live.conftest bench/live_bench.py -q -s -p no:cacheprovider
endif

bench-floor: env db ## geo_query beside the floor of Python serving its SQL over HTTP (a bare ASGI app, a minimal FastAPI one) and raw, side by side (after a `make bench QUICK=1 ONLY=queries`)
	$(PY) -m bench.floor

clean: stop ## remove the environment and the local database
	rm -rf .venv .tools .local
