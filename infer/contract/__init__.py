"""The contract between train and infer: class schema, model metadata, the box codec, defaults."""
