#!/bin/sh
# pip inside the image build, into the image's venv. The CA bundle: the file named by PIP_CERT (a
# read-only mount), else the pip_cert build secret when one was given, else the image's own. Offline:
# only the wheels in WHEELHOUSE when it is set.
set -eu
command=$1
shift
if [ -z "${PIP_CERT:-}" ] && [ -f /run/secrets/pip_cert ]; then PIP_CERT=/run/secrets/pip_cert; fi
if [ -n "${PIP_CERT:-}" ]; then export PIP_CERT; else unset PIP_CERT; fi
if [ -n "${WHEELHOUSE:-}" ] && [ "$command" = install ]; then
  set -- --no-index --find-links "$WHEELHOUSE" "$@"
fi
exec /opt/speechsvc/bin/python -m pip "$command" "$@"
