"""Switchboard's shared runtime: config, logging, tracing, the agent bootstrap, A2A client, ports."""

import os

# a2a-sdk wraps most of its internal methods in spans of its own. They cost about a
# millisecond per hop and say nothing our gRPC and agent spans do not; opt back in
# by setting the variable to "true".
os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")
