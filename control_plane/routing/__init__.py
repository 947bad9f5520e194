"""Which model serves a chat request, the decision record, and its reuse across turns."""
