"""Portal views, one module per concern."""
