#!/bin/sh
# Prepare docker-compose.yml's secrets on this laptop (idempotent; keeps what exists):
# - deploy/compose/secrets/compose.env: a random password per NATS user and for Postgres, and the
#   runner-auth callout issuer key pair (seed for runner-auth, public key for nats-server)
#   (use it with `docker compose --env-file deploy/compose/secrets/compose.env ...`);
# - deploy/compose/secrets/master-keyring.json: the vault's master keyring (DESIGN section 5);
# - deploy/compose/secrets/run-grant-*.json: satisfaction's run grant signing keys, and their public
#   half for the vault (docs/runners.md);
# - deploy/compose/secrets/nats-tls/: a private CA (openssl), the NATS server's certificate (for the
#   host "nats" and this laptop's localhost) and a client certificate per NATS client, for mutual TLS.
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
    GRANTLINE_NATS_PASSWORD_AUDIT_READER GRANTLINE_NATS_PASSWORD_OPERATOR GRANTLINE_NATS_PASSWORD_PROXY \
    GRANTLINE_UI_SESSION_SECRET GRANTLINE_NATS_PASSWORD_NOTIFIER; do
  grep -q "^${name}=" "$env_file" || echo "${name}=$(random)" >> "$env_file"
done
# The notifier's sealing key for webhook endpoint secrets: base64 of 32 random bytes.
grep -q '^GRANTLINE_NOTIFIER_SEALING_KEY=' "$env_file" || \
  echo "GRANTLINE_NOTIFIER_SEALING_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >> "$env_file"

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
# Run grant keys: an Ed25519 JWK set for satisfaction and its public half for the vault (openssl only).
signing=deploy/compose/secrets/run-grant-signing.json
verification=deploy/compose/secrets/run-grant-verification.json
if [ ! -f "$signing" ]; then
  b64url() { base64 | tr -d '\n=' | tr '+/' '-_'; }
  pem=$(openssl genpkey -algorithm ed25519)
  d=$(printf '%s\n' "$pem" | openssl pkey -outform DER | tail -c 32 | b64url)
  x=$(printf '%s\n' "$pem" | openssl pkey -pubout -outform DER | tail -c 32 | b64url)
  common='"kty": "OKP", "crv": "Ed25519", "kid": "compose-1", "alg": "EdDSA", "use": "sig"'
  printf '{"keys": [{%s, "x": "%s", "d": "%s"}]}\n' "$common" "$x" "$d" > "$signing"
  printf '{"keys": [{%s, "x": "%s"}]}\n' "$common" "$x" > "$verification"
fi

# NATS TLS: kept while the CA exists (delete deploy/compose/secrets/nats-tls to start over).
tls=deploy/compose/secrets/nats-tls
mkdir -p "$tls"
if [ ! -f "$tls/ca.pem" ]; then
  rm -f "$tls"/*.pem
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 825 \
    -subj "/CN=Grantline compose NATS CA" -keyout "$tls/ca-key.pem" -out "$tls/ca.pem" 2>/dev/null
fi
issue() { # name, extensions
  [ -f "$tls/$1.pem" ] && return 0
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=$1" \
    -keyout "$tls/$1-key.pem" -out "$tls/$1.csr" 2>/dev/null
  printf '%s\n' "$2" > "$tls/$1.ext"
  openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" -CAcreateserial \
    -days 825 -sha256 -extfile "$tls/$1.ext" -out "$tls/$1.pem" 2>/dev/null
  rm -f "$tls/$1.csr" "$tls/$1.ext"
}
issue server "$(printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:nats,DNS:localhost,IP:127.0.0.1')"
for client in auth-gateway vault refresher satisfaction audit runner-auth notifier proxy migrate runner; do
  issue "$client" "$(printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth')"
done
rm -f "$tls/ca.srl"

# The directory stays private to you; the files must be readable by the containers' users (10001).
chmod 700 deploy/compose/secrets
chmod 644 "$keyring" "$signing" "$verification" "$tls"/*.pem
chmod 600 "$tls/ca-key.pem"
chmod 755 "$tls"
echo "ready: $env_file, $keyring, the run grant keys and $tls/ (all git-ignored); now: docker compose --env-file $env_file up --build"
