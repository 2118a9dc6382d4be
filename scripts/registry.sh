#!/usr/bin/env bash
# Starts an OCI registry for tests on a free loopback port: the CNCF distribution registry from
# Debian's docker-registry package, storing in DIR, with basic auth (htpasswd from apache2-utils).
# Prints `ADDR USER PASSWORD` once it accepts connections; its pid is in DIR/pid.
#   usage: scripts/registry.sh DIR
set -euo pipefail
dir=$1
user=tester
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$dir/data"
htpasswd -Bbn "$user" "$password" > "$dir/htpasswd"
cat > "$dir/config.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: harness-tests
auth:
  htpasswd:
    realm: harness-tests
    path: $dir/htpasswd
YAML
docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
echo $! > "$dir/pid"
for _ in $(seq 200); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "127.0.0.1:$port $user $password"
    exit 0
  fi
  sleep 0.05
done
echo "docker-registry did not start; see $dir/log" >&2
exit 1
