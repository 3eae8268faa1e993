"""LongAnimation: long line-art animation colorization with Dynamic Global-Local Memory.

Reimplementation of "LongAnimation: Long Animation Generation with Dynamic
Global-Local Memory" (Chen et al., ICCV 2025), with training code, streaming
memory and resumable long inference.
"""

from .errors import UserError

__version__ = "0.1.0"
__all__ = ["UserError", "__version__"]
