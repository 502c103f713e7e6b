"""One image's job: memory, tiles, fits, ensembles and groups, blended into the output."""
