"""Colour science shared by every method: Lab, CMC(l:c), the 313 ab bins."""

from colorjax.color.cmc import delta_e_cmc
from colorjax.color.lab import equalize_lightness
from colorjax.color.lab import join_lab
from colorjax.color.lab import lab_to_rgb
from colorjax.color.lab import lab_to_rgb_numpy
from colorjax.color.lab import rgb_to_lab
from colorjax.color.lab import rgb_to_lab_numpy
from colorjax.color.quantize import ABPriorAccumulator
from colorjax.color.quantize import ab_gamut_bins
from colorjax.color.quantize import annealed_mean
from colorjax.color.quantize import annealed_mean_from_logits
from colorjax.color.quantize import densify
from colorjax.color.quantize import empirical_ab_prior
from colorjax.color.quantize import nearest_bin
from colorjax.color.quantize import NUM_AB_BINS
from colorjax.color.quantize import rebalance_weights
from colorjax.color.quantize import smooth_prior
from colorjax.color.quantize import soft_encode
from colorjax.color.quantize import soft_encode_numpy
from colorjax.color.quantize import soft_encode_sparse
