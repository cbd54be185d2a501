#!/bin/sh
# Grafana's start in the compose stack. Anonymous viewers see the dashboards (compose sets
# that); the admin account never has a known password: GRAFANA_ADMIN_PASSWORD when it is set,
# otherwise a random one made here that nobody knows (set the variable to log in as admin).
set -eu
if [ -n "${GRAFANA_ADMIN_PASSWORD:-}" ]; then
  GF_SECURITY_ADMIN_PASSWORD="$GRAFANA_ADMIN_PASSWORD"
else
  GF_SECURITY_ADMIN_PASSWORD="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
  echo "grafana: GRAFANA_ADMIN_PASSWORD is not set, so the admin account got a random password;" \
    "dashboards are open to anonymous viewers" >&2
fi
export GF_SECURITY_ADMIN_PASSWORD
unset GRAFANA_ADMIN_PASSWORD
exec "$@"
