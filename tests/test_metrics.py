import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dipcli.metrics import psnr, ssim


def test_device_metrics_match_scikit_image():
    rng = np.random.default_rng(0)
    a = rng.random((40, 48, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    ta, tb = (torch.from_numpy(x.transpose(2, 0, 1))[None] for x in (a, b))
    assert abs(psnr(tb, ta).item() - peak_signal_noise_ratio(a, b, data_range=1)) < 1e-3
    ref = structural_similarity(a, b, data_range=1, channel_axis=2, gaussian_weights=True,
                                use_sample_covariance=False)
    assert abs(ssim(tb, ta).item() - ref) < 1e-3
