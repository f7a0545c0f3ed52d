"""The methods SMS is measured against, one registered method per file, of every family (score distillation, sampling, classic); README: "Adding a method"."""
