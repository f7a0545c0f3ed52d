"""Score-distillation baselines, one registered method per file (see README: "Adding a method")."""
