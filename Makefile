# The two commands: `make dev` and `make test`. Everything a test needs is
# installed from the package registries by these targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PYCONVEX_CACHE ?= $(CURDIR)/.cache

.PHONY: dev aws-local test check fmt bench venv dynamodb-local js-deps chromium clean \
	infra-deps cdk-cli sam-cli lambda-package deploy aws-credentials admin-key localstack \
	chat chat-web

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

dynamodb-local:
	bash scripts/install-dynamodb-local.sh

# The official Convex JS client and ws, pinned by tests/js/package-lock.json.
tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $@

js-deps: tests/js/node_modules/.installed

# Debian's Chromium for the browser tests (tests/browser; Playwright drives
# it: Playwright's own browser download cannot be fetched here). Installing
# needs root, or sudo.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

dev: venv
	$(PY) -m runtime dev $(DEV_ARGS)

# The Lambda handlers behind the local API Gateway, on DynamoDB Local.
aws-local: venv dynamodb-local
	$(PY) -m runtime aws-local $(AWS_LOCAL_ARGS)

# The AWS stack's tools. infra-deps: the pyproject extra `infra` (cfn-lint,
# aws-cdk-lib, SAM's translator) in .venv; tests/infra needs it (and Node.js).
$(VENV)/.infra-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e '.[infra]'
	touch $@

infra-deps: $(VENV)/.infra-installed

# The CDK CLI, pinned by infra/package-lock.json.
infra/node_modules/.installed: infra/package.json infra/package-lock.json
	npm ci --prefix infra --no-audit --no-fund --loglevel=error
	touch $@

cdk-cli: infra/node_modules/.installed

# SAM's CLI (the pyproject extra `sam`) in a virtualenv of its own: it pins
# boto3 and click below the versions .venv runs the tests with.
SAM_VENV := $(PYCONVEX_CACHE)/sam-cli
SAM := $(SAM_VENV)/bin/sam
$(SAM_VENV)/.installed: $(VENV)/.installed pyproject.toml
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip
	$(SAM_VENV)/bin/python -m pip install -q $$($(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["sam"])')
	touch $@

sam-cli: $(SAM_VENV)/.installed

# build/lambda: the code of every function (infra/package.py says what and why).
lambda-package: infra-deps
	$(PY) infra/package.py $(if $(FUNCTIONS),--functions $(FUNCTIONS))

# The checks and `sam build` run offline: a region but no credentials, no
# instance-metadata lookups, no telemetry, version checks or notices. Debian's
# Node.js is 20, past jsii's support window (it works; the banner is noise).
OFFLINE := AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
	SAM_CLI_TELEMETRY=0 CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true \
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
STACK ?= pyconvex

# LocalStack (S3 only, no Docker) in a virtualenv of its own: its pins
# (cbor2, pyopenssl, cryptography, service_identity) clash with .venv's and
# 4.9 is the last release on Python 3.11 (runtime/emulator/s3.py says more).
# tests/support/localstack.py starts it. About 40 s to install here.
LOCALSTACK_VENV := .venv-localstack
$(LOCALSTACK_VENV)/.installed:
	$(PYTHON) -m venv $(LOCALSTACK_VENV)
	echo '*' > $(LOCALSTACK_VENV)/.gitignore  # not in git
	$(LOCALSTACK_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOCALSTACK_VENV)/bin/python -m pip install -q --prefer-binary 'localstack-core[runtime]==4.9.2' \
		'cbor2<5.7' 'pyopenssl<24.3' 'cryptography<44' 'service_identity<24.3'
	touch $@

localstack: $(LOCALSTACK_VENV)/.installed

# The example chat app (examples/chat): its web client's packages, pinned by
# examples/chat/web/package-lock.json, and its Vite build in web/dist (not in
# git). `make chat` serves the app and its functions from one dev server.
CHAT := examples/chat
CHAT_WEB_SOURCES := $(wildcard $(CHAT)/web/src/* $(CHAT)/web/*.html $(CHAT)/web/*.ts $(CHAT)/web/*.json)
$(CHAT)/web/node_modules/.installed: $(CHAT)/web/package.json $(CHAT)/web/package-lock.json
	npm ci --prefix $(CHAT)/web --no-audit --no-fund --loglevel=error
	touch $@

$(CHAT)/web/dist/index.html: $(CHAT)/web/node_modules/.installed $(CHAT_WEB_SOURCES) $(wildcard $(CHAT)/functions/_generated/*)
	cd $(CHAT)/web && ./node_modules/.bin/vite build --logLevel warn

chat-web: $(CHAT)/web/dist/index.html

CHAT_PORT ?= 3210
chat: venv chat-web
	@echo "the chat app: open http://127.0.0.1:$(CHAT_PORT)/ (two windows: two people)"
	$(PY) -m runtime dev --functions $(CHAT)/functions --static $(CHAT)/web/dist \
		--data $(CHAT)/.data --port $(CHAT_PORT) --site-port $$(($(CHAT_PORT) + 1)) $(CHAT_ARGS)

test: venv dynamodb-local js-deps infra-deps localstack chromium chat-web
	$(PY) -m pytest -q -m "not scale" $(PYTEST_ARGS)

check: venv infra-deps cdk-cli sam-cli lambda-package
	$(VENV)/bin/ruff check runtime tests bench functions infra examples
	$(VENV)/bin/ruff format --check runtime tests bench functions infra examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(VENV)/bin/cfn-lint template.yaml
	$(OFFLINE) $(SAM) validate --lint --template template.yaml
	cd infra && $(OFFLINE) ./node_modules/.bin/cdk synth --no-notices --quiet \
		--context stack=$(STACK) --output ../build/cdk.out
	$(VENV)/bin/cfn-lint build/cdk.out/$(STACK).template.json

# Deploy with SAM's CLI, with no questions asked: the AWS credentials are
# checked first (one line when there are none), then build (copies
# build/lambda per function) and deploy, every parameter at its template
# default unless PARAMS overrides it (PARAMS='OpenSearchEndpoint=https://...
# LogRetentionDays=30'); GUIDED=1 asks SAM's questions instead and saves
# the answers to samconfig.toml (kept out of git), which later runs reuse.
# The stack generates the admin key into Secrets Manager (its
# AdminKeySecretArn output; `make admin-key` prints it). Then the schema is
# pushed once (new indexes built from the stored documents): the Lambdas
# serve the schema the table holds. FUNCTIONS=DIR deploys an app kept
# outside the repository (default functions/).
FUNCTIONS ?= functions
SAM_DEPLOY_FLAGS = --stack-name $(STACK) --capabilities CAPABILITY_IAM --resolve-s3 \
	--no-confirm-changeset --no-fail-on-empty-changeset \
	$(if $(PARAMS),--parameter-overrides $(PARAMS))
deploy: aws-credentials sam-cli lambda-package
	$(OFFLINE) $(SAM) build --template template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM) deploy $(if $(GUIDED),--guided --stack-name $(STACK) --capabilities CAPABILITY_IAM,$(SAM_DEPLOY_FLAGS))
	$(PY) -m runtime deploy --stack $(STACK) --functions $(FUNCTIONS)
	@echo "the CLI's admin key: export PYCONVEX_ADMIN_KEY=\"\$$(make -s admin-key STACK=$(STACK))\""

# Is there an AWS identity to deploy with? (runtime/aws/credentials.py)
aws-credentials: venv
	@$(PY) -m runtime.aws.credentials

# A deployed stack's admin key (its secret, read with your AWS credentials).
admin-key: venv
	@$(PY) -c 'import sys; from runtime.aws.deploy import stack_admin_key; print(stack_admin_key(sys.argv[1]))' $(STACK)

fmt: venv
	$(VENV)/bin/ruff check --fix runtime tests bench functions examples
	$(VENV)/bin/ruff format runtime tests bench functions examples

bench: venv dynamodb-local
	$(PY) bench/database.py $(BENCH_ARGS)
	$(PY) bench/profile.py $(BENCH_ARGS)
	$(PY) bench/functions.py $(BENCH_ARGS)
	$(PY) bench/reactivity.py $(BENCH_ARGS)
	$(PY) bench/files.py $(BENCH_ARGS)
	$(PY) bench/scheduler.py $(BENCH_ARGS)
	$(PY) bench/search.py $(BENCH_ARGS)
	$(PY) bench/aws.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(LOCALSTACK_VENV) .cache .data .pytest_cache .mypy_cache .ruff_cache .hypothesis tests/js/node_modules \
		$(CHAT)/web/node_modules $(CHAT)/web/dist $(CHAT)/.data
