"""The adapter query benchmark: our per-tick read versus a peer's naive exact query."""
