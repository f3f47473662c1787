#!/bin/sh
# The image's entrypoint. The container starts as root only to get here: it makes the
# data folder the service user's alone (0700; files in it that are not the service's,
# from an earlier image or a root run, are handed to it), then runs the service as that
# unprivileged user holding just the four capabilities that starting scripts as another
# user takes (runners/capabilities.py: CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_KILL; the
# bounding set is cut down to them, so none other can ever be gained). The service
# clears its ambient and inheritable capabilities at start, so the scripts, which run
# as CRONWELL_RUN_AS (cronwell-jobs), hold none and cannot read the data folder.
# Started as another user (docker run --user ...), it runs the service as it is: then
# scripts share the service's user, and the start-up log says so.
set -eu
service_user=cronwell
if [ "$(id -u)" != 0 ]; then
    exec cronwell "$@"
fi
data=${CRONWELL_DATA_DIR:-/data}
mkdir -p "$data"
find "$data" \( ! -user "$service_user" -o ! -group "$service_user" \) \
    -exec chown -h "$service_user:$service_user" {} +
chmod 0700 "$data"
HOME=$(getent passwd "$service_user" | cut -d: -f6)
export HOME
caps=+setuid,+setgid,+chown,+kill
exec setpriv --reuid="$service_user" --regid="$service_user" --init-groups \
    --inh-caps=-all,"$caps" --ambient-caps=-all,"$caps" --bounding-set=-all,"$caps" \
    -- cronwell "$@"
