"""Several copies of one generator run as one batched call (``--group``).

Each image of a group gets its own weights; :class:`Stack` holds them stacked along a new first
dimension and runs every copy on its own input with :func:`torch.func.vmap`, so that a GPU sees
one large batched launch instead of N small ones. One optimiser over the stacked weights is the
same as one per copy for an elementwise optimiser such as Adam.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, replace_all_batch_norm_modules_, stack_module_state, vmap


class Stack(nn.Module):
    """N nets of one architecture as one module: input ``(N, C, h, w)`` → output ``(N, C', H, W)``.

    The nets' batch-norm layers use the statistics of each copy's own input, as they do in DIP's
    training mode; their running averages (unused by a fit) are dropped, since vmap cannot update
    them. Buffers that are not statistics (fixed upsampling filters) are shared.
    """

    def __init__(self, nets: list[nn.Module]) -> None:
        super().__init__()
        if len(nets) < 2:
            raise ValueError("Stack: give two or more nets")
        template = copy.deepcopy(nets[0])
        replace_all_batch_norm_modules_(template)
        self._template = [template.to("meta")]  # in a list: not a submodule, never moved or saved
        params, _ = stack_module_state(nets)
        self._names = list(params)
        self.weights = nn.ParameterList(nn.Parameter(params[k].detach().clone()) for k in self._names)
        fixed = dict(template.named_buffers())  # what is left once the statistics are gone
        self._buffer_names = list(fixed)
        for k, name in enumerate(self._buffer_names):
            self.register_buffer(f"fixed_{k}", dict(nets[0].named_buffers())[name].detach().clone())
        self.count = len(nets)

    def member_weights(self, i: int) -> dict[str, torch.Tensor]:
        """Copy ``i``'s trained parameters by name, to load into a net of the architecture."""
        pairs = zip(self._names, self.weights, strict=True)
        return {name: weight[i].detach().clone() for name, weight in pairs}

    def input_shape(self, h: int, w: int) -> tuple[int, int, int]:
        """One copy's input code (the fit draws one and gives it to every copy)."""
        return self._template[0].input_shape(h, w)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        template = self._template[0]
        fixed = {name: getattr(self, f"fixed_{k}") for k, name in enumerate(self._buffer_names)}

        def one(weights: list[torch.Tensor], code: torch.Tensor) -> torch.Tensor:
            state = dict(zip(self._names, weights, strict=True)) | fixed
            return functional_call(template, state, (code[None],))[0]

        return vmap(one)(list(self.weights), z)
