"""What was done to the image: forward models and noise models (deepinv's "physics")."""
