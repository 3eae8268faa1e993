"""The pretrained networks behind LPIPS, FID and FVD, as plain modules loaded from local safetensors.

Nothing is downloaded. Each network's state-dict keys follow its usual
published checkpoint so that users can convert that file once, on a machine
where they trust it, e.g.::

    import torch; from safetensors.torch import save_file
    state = torch.load("pt_inception-2015-12-05-6726825d.pth", map_location="cpu")
    keep = {k: v.contiguous() for k, v in state.items()
            if not k.endswith("num_batches_tracked") and not k.startswith("fc.")}
    save_file(keep, "inception_fid.safetensors")

* :class:`~.lpips_alexnet.LPIPSAlexNet` (``--lpips-weights``): torchvision
  AlexNet features + LPIPS v0.1 ``alex.pth`` linear heads in one file;
* :class:`~.inception.FIDInceptionV3` (``--inception-weights``): pytorch-fid's
  ``pt_inception-2015-12-05`` (TF FID Inception), pool3 features;
* :class:`~.i3d.I3D` (``--i3d-weights``): the 400-class Kinetics I3D of the
  common FVD code (``i3d_pretrained_400.pt``), logits.

Each module's docstring lists its exact key layout.
"""

from .i3d import I3D
from .inception import FIDInceptionV3
from .layers import FrozenBatchNorm, load_network
from .lpips_alexnet import LPIPSAlexNet

__all__ = ["I3D", "FIDInceptionV3", "FrozenBatchNorm", "LPIPSAlexNet", "load_network"]
