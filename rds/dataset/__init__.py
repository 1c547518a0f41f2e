"""A dataset from the owner's hands to the domain: schema and public metadata, the mock, and
the private store the sandbox reads."""
