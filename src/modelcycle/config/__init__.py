"""Configuration: runtime settings (.env + environment), the project spec, logging set-up."""
