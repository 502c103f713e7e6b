"""The one public library layer: task specifications, presets, planning, the task functions."""
