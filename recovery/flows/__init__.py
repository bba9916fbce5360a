"""The recovery journeys' business steps: keyword-only functions, one module per journey."""
