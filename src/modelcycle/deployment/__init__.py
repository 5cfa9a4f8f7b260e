"""The deployment stage: rollout state, routing between versions, gates and the controller."""
