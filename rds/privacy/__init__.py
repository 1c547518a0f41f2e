"""Privacy checks: which SQL may be sent (``sql``); more checks join here."""
