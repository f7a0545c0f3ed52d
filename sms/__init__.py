"""Style Matching Score (SMS) and the shared score-distillation machinery."""
__version__ = "0.1.0"
