"""SD-1.5-family model stack: real, style and fake ε-networks plus tokenizer, text encoder, VAE, scheduler."""
from sms.models.denoisers import Denoisers
from sms.models.errors import ModelLoadError
from sms.models.stack import FakeLoraConfig, ModelSpec, ModelStack, load_stack

__all__ = ["Denoisers", "FakeLoraConfig", "ModelLoadError", "ModelSpec", "ModelStack", "load_stack"]
