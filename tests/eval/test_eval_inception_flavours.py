"""Inception flavours of eval.inception against the library pipelines they claim to equal, on the same weights."""
import numpy as np
import torch
import torch.nn.functional as F
from eval_helpers import smooth_image
from torchvision.models import inception_v3

from eval.images import load_rgb, to_tensor
from eval.inception import InceptionFeatures

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def photos(folder, sizes):
    rng = np.random.default_rng(7)
    paths = []
    for index, size in enumerate(sizes):
        paths.append(folder / f"photo_{index}.png")
        smooth_image(rng, size).save(paths[-1])
    return paths


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.double() - expected.double()).norm() / expected.double().norm())


def test_torchvision_checkpoint_gives_torchvisions_own_pretrained_pipeline(tmp_path):
    """torchvision runs ``inception_v3_google-*.pth`` with transform_input=True on ImageNet-normalised input."""
    torch.manual_seed(0)
    reference = inception_v3(weights=None, aux_logits=True, init_weights=True, transform_input=True)
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running stats := this batch's, so random features are O(1)
    with torch.no_grad():
        reference.train()(torch.rand(2, 3, 299, 299) * 2 - 1)
    torch.save(reference.state_dict(), tmp_path / "inception_v3_google.pth")
    reference.fc = torch.nn.Identity()
    reference.eval()

    ours = InceptionFeatures(tmp_path / "inception_v3_google.pth")
    assert ours.flavour == "torchvision" and ours.rule == "299-bilinear-pm1"
    paths = photos(tmp_path, (80, 120))
    got = ours(paths)
    with torch.no_grad():
        expected = torch.cat([reference((F.interpolate(to_tensor(load_rgb(p)), size=(299, 299), mode="bilinear",
                                                      align_corners=False) - IMAGENET_MEAN) / IMAGENET_STD)
                              for p in paths])
    assert expected.abs().mean() > 0.05
    assert relative_error(got, expected) < 1e-5
