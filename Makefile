# Shortcuts; scripts/run and scripts/test are the two commands that matter.
.PHONY: run test worker beat lint fmt check

run:
	scripts/run

test:
	scripts/test

worker:
	.venv/bin/celery -A chatsite worker -l info

beat:
	.venv/bin/celery -A chatsite beat -l info

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

fmt:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

check: lint
	.venv/bin/python manage.py makemigrations --check --dry-run
	.venv/bin/python manage.py check
