import signal

import numpy as np
import pytest
import torch

from dipcli.extras import missing, needs

torch.set_num_threads(1)  # tiny tensors: threads cost more than they give, and runs repeat exactly


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(module, ...): skip unless these optional modules import; "
                            "the reason names the extra that installs them (from pyproject)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``@pytest.mark.needs("matplotlib")`` skips with one line, ``needs matplotlib: pip install
    'dipcli[plot]'``, where the module is missing: the suite passes on the README's install. A
    skip mark, not a skip in setup, so that no fixture starts and the report names the test."""
    for item in items:
        for mark in item.iter_markers("needs"):
            absent = missing(set(mark.args))
            if absent:
                item.add_marker(pytest.mark.skip(reason=needs(absent[0])))


def smooth_image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth synthetic image in [0, 1]: gradients and a disc, easy for DIP to fit."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = [0.5 + 0.4 * np.sin(3 * xx + c) * np.cos(2 * yy - c) for c in range(channels)]
    img = np.stack(base, axis=2)
    disc = (yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.06
    img[disc] = 0.9
    return img.astype(np.float32)


@pytest.fixture
def smooth():
    return smooth_image


@pytest.fixture
def ctrl_c_deliverable():
    """Ctrl-C reaches the `dip` processes the test starts. A shell that runs the suite in the
    background (``pytest &``) starts it with SIGINT ignored, and a process inherits an ignored
    signal (a handled one is reset at exec), so the `dip` it starts would not see Ctrl-C at all."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def plan_denoise(side: int, sigma: float, **options):
    """The plan `dip denoise --sigma SIGMA` makes for a random side² image on the CPU (planning only)."""
    from dipcli.api.inputs import TaskInput
    from dipcli.api.plan import make_plan
    from dipcli.api.spec import Options, make_spec
    from dipcli.io import Image

    pixels = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
    spec = make_spec("denoise", Options(device="cpu", **options), sigma=sigma)
    return make_plan(spec, TaskInput(Image(pixels, np.dtype(np.uint8))))
