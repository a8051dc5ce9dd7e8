"""End-to-end workflows behind the command line (``steerable3d <workflow>``).

Each submodule is one protocol with its data, models, training, scores and tables:
:mod:`~steerable3d.workflows.tetris` (3D Tetris under rotations), :mod:`~steerable3d.workflows.segment`
(train and apply a U-Net on NIfTI folders), :mod:`~steerable3d.workflows.mni152` (real MRI),
:mod:`~steerable3d.workflows.density` (electron densities) and :mod:`~steerable3d.workflows.cosmology`
(periodic boxes). They are imported on first use:

>>> import steerable3d.workflows as workflows
>>> workflows.tetris.__name__
'steerable3d.workflows.tetris'
"""

import importlib

__all__ = ["cosmology", "density", "mni152", "segment", "tetris"]


def __getattr__(name: str):
    if name in __all__:  # a submodule, imported when first asked for (``from steerable3d.workflows import *`` too)
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
