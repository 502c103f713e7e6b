"""The one optimisation loop and its parts: configuration, stop rules, regularisers."""
