"""The recovery journeys' views: thin, one module per journey, each calling its flow."""
