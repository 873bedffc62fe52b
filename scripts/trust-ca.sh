#!/usr/bin/env bash
# Trusts the stack's local CA (tlsMode "local-ca") so browsers and curl reach
# https://127.0.0.1/ with no warning, the way mkcert and Caddy's local CA do.
# Only the CA's certificate is ever exported; its key stays in Pulumi's state.
#
#   scripts/trust-ca.sh                 # system store + this user's browsers
#   scripts/trust-ca.sh --browsers      # only Chrome/Chromium/Firefox (NSS) for this user
#   scripts/trust-ca.sh --system        # only the OS store (needs root)
#   scripts/trust-ca.sh --remove        # undo
#   scripts/trust-ca.sh --ca-file ca.pem  # a CA file instead of `pulumi stack output caCertificatePem`
set -euo pipefail

NICKNAME="https-ml-api local CA"
STORE_NAME="https-ml-api-local-ca"
ca_file="" system=true browsers=true remove=false
while [ $# -gt 0 ]; do
  case "$1" in
    --ca-file) ca_file="$2"; shift ;;
    --system) browsers=false ;;
    --browsers) system=false ;;
    --remove) remove=true ;;
    *) echo "trust-ca.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$ca_file" ] && ! $remove; then
  ca_file="$(mktemp)"
  trap 'rm -f "$ca_file"' EXIT
  if ! pulumi stack output caCertificatePem > "$ca_file" 2>/dev/null || ! grep -q "BEGIN CERTIFICATE" "$ca_file"; then
    echo "trust-ca.sh: the stack has no local CA; run: pulumi config set tlsMode local-ca && pulumi up" >&2
    exit 1
  fi
fi

trust_system() {
  case "$(uname -s)" in
    Darwin)
      if $remove; then sudo security delete-certificate -c "$NICKNAME" /Library/Keychains/System.keychain
      else sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain "$ca_file"; fi ;;
    Linux)
      if [ -d /usr/local/share/ca-certificates ]; then        # Debian, Ubuntu
        if $remove; then rm -f "/usr/local/share/ca-certificates/$STORE_NAME.crt"
        else install -m 0644 "$ca_file" "/usr/local/share/ca-certificates/$STORE_NAME.crt"; fi
        update-ca-certificates --fresh >/dev/null
      elif [ -d /etc/pki/ca-trust/source/anchors ]; then       # Fedora, RHEL
        if $remove; then rm -f "/etc/pki/ca-trust/source/anchors/$STORE_NAME.pem"
        else install -m 0644 "$ca_file" "/etc/pki/ca-trust/source/anchors/$STORE_NAME.pem"; fi
        update-ca-trust extract
      else
        echo "trust-ca.sh: unknown system trust store; add $ca_file to it by hand" >&2; return 1
      fi ;;
    *) echo "trust-ca.sh: on $(uname -s), import the CA by hand (Windows: certutil -addstore Root ca.pem)" >&2; return 1 ;;
  esac
}

# Chrome/Chromium on Linux and Firefox keep their own NSS databases.
trust_nss_db() {
  local db="$1"
  command -v certutil >/dev/null || { echo "trust-ca.sh: certutil is needed (Debian: apt-get install libnss3-tools)" >&2; return 1; }
  if $remove; then
    certutil -d "sql:$db" -D -n "$NICKNAME" 2>/dev/null || true
  else
    mkdir -p "$db" && chmod 700 "$db"
    [ -f "$db/cert9.db" ] || certutil -d "sql:$db" -N --empty-password
    certutil -d "sql:$db" -A -t "C,," -n "$NICKNAME" -i "$ca_file"
  fi
}

trust_browsers() {
  [ "$(uname -s)" = Linux ] || return 0   # macOS and Windows browsers use the system store
  trust_nss_db "$HOME/.pki/nssdb"
  for profile in "$HOME"/.mozilla/firefox/*.default*; do
    if [ -d "$profile" ]; then trust_nss_db "$profile"; fi
  done
}

if $system; then trust_system; fi
if $browsers; then trust_browsers; fi
if $remove; then echo "trust-ca.sh: removed the local CA"; else echo "trust-ca.sh: trusted the local CA ($(openssl x509 -in "$ca_file" -noout -subject -fingerprint -sha256 | tr '\n' ' '))"; fi
