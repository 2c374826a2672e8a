"""`/graphql`: the subset of MLflow's GraphQL schema its web UI queries (see `schema.py`)."""
