"""The private side: running requests in the sandbox and checking them, policies,
auto-release, reading submissions, and the served domain's worker loop.

It knows a domain and a request only through the protocols in ``rds.worker.ports``."""
