# The front door. Every target creates or updates the virtual environment first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000
PYTEST_ARGS ?=

.PHONY: venv run test lint typecheck contracts check-migrations check-deploy ci clean screenshots messages

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "error: Python 3.11 or newer is required (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $@

## Run the whole system: migrate, seed the demo world, web + Celery worker + beat.
run: $(STAMP)
	$(PY) manage.py runstack --port $(PORT)

## Run the whole test suite (SQLite by default; PostgreSQL and Redis when
## DATABASE_URL and REDIS_URL point at them).
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The portal's end-to-end test, saving its screenshots where docs/portal.md shows them.
screenshots: $(STAMP)
	E2E_ARTIFACTS=docs/img/portal $(PY) -m pytest -q tests/portal/test_end_to_end.py
	rm -f docs/img/portal/timings.json

# The portal's Simplified Chinese catalogue: extract (then translate the new entries in
# locale/zh_Hans/LC_MESSAGES/django.po), and compile. Needs GNU gettext.
messages: $(STAMP)
	$(PY) manage.py makemessages -l zh_Hans --no-obsolete --ignore=.venv --ignore=.venv-bench --ignore=var \
		--ignore=tools --ignore=bench --ignore=tests --ignore=docs --ignore='templates/admin/*' \
		--ignore='*/admin.py' --ignore='*/admin_*.py'
	$(PY) manage.py compilemessages -l zh_Hans --ignore=.venv --ignore=.venv-bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

contracts: $(STAMP)
	$(BIN)/lint-imports

check-migrations: $(STAMP)
	$(PY) manage.py makemigrations --check --dry-run

# Production settings with throwaway secrets: must report no issue at all.
check-deploy: $(STAMP)
	DJANGO_ENV=production SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	API_KEY_SECRET=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	ALLOWED_HOSTS=pay.example.com DATABASE_URL=postgres://localhost/openpay REDIS_URL=redis://localhost:6379/0 \
	$(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var/*.sqlite3 .pytest_cache .mypy_cache .ruff_cache

# Benchmarks. django-hordak (the comparison in the ledger section) lives only in its own
# virtualenv, so the product's .venv never gets it.
BENCH_VENV  ?= .venv-bench
BENCH_PY    := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_DB    ?= openpay_bench
PG_URL      ?= postgres://postgres@127.0.0.1:5432
# Empty: the run starts a redis-server of its own on a free port (and stops it). Give a
# URL to use a running Redis instead (a database number nobody else uses: the run's
# Celery worker takes every task queued there).
BENCH_REDIS ?=
QUICK       ?=
# More options for `python -m bench`: `--section api`, `--no-charts` (CI: keep the PNGs
# under docs/ as they are).
BENCH_ARGS  ?=

.PHONY: bench bench-charts

$(BENCH_STAMP): pyproject.toml requirements.lock
	@test -x $(BENCH_PY) || $(PYTHON) -m venv $(BENCH_VENV)
	@echo '*' > $(BENCH_VENV)/.gitignore
	$(BENCH_PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e . django-hordak
	@touch $@

## Benchmarks on a fresh PostgreSQL database: `make bench`, or `make bench QUICK=1`
## for a short run. See docs/benchmarks.md.
bench: $(STAMP) $(BENCH_STAMP)
	@pg_isready -h 127.0.0.1 -q \
		|| pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n 1) main start
	@for _ in $$(seq 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
	DEBUG=false DATABASE_URL=$(PG_URL)/$(BENCH_DB) REDIS_URL=$(BENCH_REDIS) \
		$(PY) -m bench $(if $(QUICK),--quick) --bench-python $(BENCH_PY) $(BENCH_ARGS)

## Redraw docs/img/bench/*.png from the last run (var/bench/latest.json).
bench-charts: $(STAMP)
	$(PY) -m bench.charts

# The Postman collection, generated from the OpenAPI schema (needs Node.js and npm).
POSTMAN := tools/postman
POSTMAN_COLLECTION := docs/openpay.postman_collection.json

$(POSTMAN)/node_modules/.installed: $(POSTMAN)/package.json $(POSTMAN)/package-lock.json
	cd $(POSTMAN) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: postman newman
postman: $(STAMP) $(POSTMAN)/node_modules/.installed
	$(PY) manage.py spectacular --format openapi-json --file var/openapi.json
	$(POSTMAN)/node_modules/.bin/openapi2postmanv2 -s var/openapi.json -o var/postman.raw.json \
		-p -O folderStrategy=Tags,parametersResolution=Example,enableOptionalParameters=false
	$(PY) $(POSTMAN)/build.py var/postman.raw.json $(POSTMAN_COLLECTION)

## Run the collection with newman against a live server started here (CI runs this).
newman: postman
	$(PY) -m tools.postman.run_newman $(POSTMAN_COLLECTION)

# Fuzzing: Schemathesis against the OpenAPI schema of a live gunicorn on a fresh database
# (PostgreSQL when DATABASE_URL is set, else SQLite under var/fuzz/), every operation and
# check, a fixed seed, then stateful runs along the schema's links. Ends with one JSON
# line of figures. See docs/reliability.md, "Fuzzing". CI: `make fuzz FUZZ_EXAMPLES=50`.
FUZZ_EXAMPLES ?= 100
FUZZ_SEED     ?= 20261101

.PHONY: fuzz
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) $(PY) -m tools.fuzz.run

# The bank test under fire: N clients make transfers through the API while the harness
# SIGKILLs gunicorn workers and the Celery worker, restarts PostgreSQL with -m immediate
# and stops Redis, at random moments; then the books, exactly-once per Idempotency-Key
# and webhook delivery are checked. It starts and owns everything it needs (its own
# PostgreSQL cluster and Redis under var/faults/), never the shared services. Ends with
# one JSON line; exits 1 on any violation. See docs/reliability.md, "Faults".
# CI: `make faults QUICK=1` (about 3 minutes); the full run takes about 10.
FAULTS_SEED ?= 1

.PHONY: faults
faults: $(STAMP)
	$(PY) -m faults $(if $(QUICK),--quick) --seed $(FAULTS_SEED)

# The attack suite: the OWASP API Security Top 10 (2023) tried against every operation of
# the served OpenAPI schema, the portal and admin log-ins, webhook targets and webhook
# receivers. One test id per attack; ends with a count per category (also written to
# var/attacks/summary.json). SQLite by default; with DATABASE_URL and REDIS_URL set, on
# them (and the cross-process rate limit attack runs too). See docs/reliability.md, "Attacks".
.PHONY: attacks
attacks: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS) tests/attacks

# pip-audit on requirements.lock, with a verdict CI can act on. tools/audit.py exits 0
# every package audited and clean, 1 vulnerabilities found, 2 some packages not audited,
# 3 the vulnerability service unreachable (nothing audited); make turns any of the
# failures into its own 2, so .ci/run calls the script itself.
.PHONY: audit
audit: $(STAMP)
	$(PY) tools/audit.py
