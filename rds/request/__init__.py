"""What both roles share about a request: its status words and the release envelope."""
