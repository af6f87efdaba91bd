"""Statistical models, estimators, diagnostics and the answer gate."""
