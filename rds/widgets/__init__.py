"""A UI kit for notebooks that knows no rds object: offline, escaped HTML building blocks,
a poller for widgets that refresh themselves, and display bundles with a live widget."""
