#!/bin/sh
# Prepare docker-compose.yml's secrets on this laptop (idempotent; keeps what exists):
# - deploy/compose/secrets/compose.env: a random password per NATS user and for Postgres, and the
#   runner-auth callout issuer key pair (seed for runner-auth, public key for nats-server)
#   (use it with `docker compose --env-file deploy/compose/secrets/compose.env ...`);
# - deploy/compose/secrets/master-keyring.json: the vault's master keyring (DESIGN section 5).
set -eu
cd "$(dirname "$0")/../.."
umask 077
# A letter first: nats-server reads a variable's value as a config token, and a leading digit breaks it.
random() { printf 'p'; od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
mkdir -p deploy/compose/secrets
env_file=deploy/compose/secrets/compose.env
touch "$env_file"
for name in POSTGRES_PASSWORD GRANTLINE_NATS_PASSWORD_AUTH_GATEWAY GRANTLINE_NATS_PASSWORD_VAULT \
    GRANTLINE_NATS_PASSWORD_REFRESHER GRANTLINE_NATS_PASSWORD_SATISFACTION GRANTLINE_NATS_PASSWORD_AUDIT \
    GRANTLINE_NATS_PASSWORD_RUNNER_AUTH GRANTLINE_NATS_PASSWORD_RUNNER_AUTH_KICK \
    GRANTLINE_NATS_PASSWORD_AUDIT_READER; do
  grep -q "^${name}=" "$env_file" || echo "${name}=$(random)" >> "$env_file"
done

# The auth-callout issuer: an account nkey pair made by `grantline runners issuer-key` (from the
# checkout with uv, else from the image), printed as the two variables compose passes on.
if ! grep -q '^GRANTLINE_RUNNER_AUTH_ISSUER_SEED=' "$env_file"; then
  if command -v uv >/dev/null 2>&1; then
    uv run --quiet grantline runners issuer-key >> "$env_file"
  else
    docker run --rm "${GRANTLINE_IMAGE:-grantline:dev}" runners issuer-key >> "$env_file"
  fi
fi

keyring=deploy/compose/secrets/master-keyring.json
if [ ! -f "$keyring" ]; then
  key=$(head -c 32 /dev/urandom | base64)
  printf '{"active": "compose-1", "keys": {"compose-1": "%s"}}\n' "$key" > "$keyring"
fi
# The directory stays private to you; the file must be readable by the container's user (10001).
chmod 700 deploy/compose/secrets
chmod 644 "$keyring"
echo "ready: $env_file and $keyring (both git-ignored); now: docker compose --env-file $env_file up --build"
