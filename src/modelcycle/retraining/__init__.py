"""The retraining stage: when to retrain (triggers), on what data, and whether the result wins."""
