"""Actions that change state, one module per domain. Keyword-only, typed, atomic."""
