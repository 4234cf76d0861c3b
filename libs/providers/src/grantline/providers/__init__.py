"""The provider catalogue: definitions, schema, authorize URLs and token response parsing."""
