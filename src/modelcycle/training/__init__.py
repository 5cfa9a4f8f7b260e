"""The training stage: features from the schema, baseline-first candidates, tuning, evaluation."""
