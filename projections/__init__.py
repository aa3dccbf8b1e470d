"""Read models: one module per view, built from the event store by tracking projections."""
