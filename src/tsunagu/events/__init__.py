"""The event model, its validation, the collector's batching and bulk import."""
