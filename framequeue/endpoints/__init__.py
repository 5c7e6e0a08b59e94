"""Endpoints: async endpoints and their invocations (SageMaker's model), and the model-endpoint registry
with the routing made on it (which version and which server runs a job's model)."""
