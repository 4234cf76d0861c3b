# Shortcuts for people who like make; the README's commands work without it.
.PHONY: dev test lint format typecheck asyncapi openapi bench

dev:            ## run every service on this machine
	./bin/grantline dev

test:           ## run the whole test suite
	./bin/test

lint:           ## ruff lint and format check
	uv run ruff check .
	uv run ruff format --check .

format:         ## apply ruff formatting and safe fixes
	uv run ruff check --fix .
	uv run ruff format .

typecheck:      ## mypy on every package
	uv run mypy libs/contract/src libs/nats-fixes/src libs/runtime/src libs/runner/src libs/devstack/src libs/providers/src libs/sandbox/src services/*/src cli/src

asyncapi:       ## regenerate docs/asyncapi.json from the contract models
	uv run python -m grantline.contract.asyncapi > docs/asyncapi.json

bench:          ## run every benchmark
	uv run python -m benchmarks
