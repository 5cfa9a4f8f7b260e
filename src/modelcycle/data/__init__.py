"""The data stage: read, describe, validate, explore and split datasets."""
