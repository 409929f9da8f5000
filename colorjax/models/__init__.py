"""Flax modules: the networks of the five methods, their shared layers, and
the reference networks (torchvision ResNet/VGG/DeepLabV3, timm SE-ResNeXt50,
pytorch-fid Inception, LPIPS, ECCV16) named like their PyTorch state dicts,
which `colorjax.pretrained` fills from files on disk. Nothing here reads a
checkpoint: this package imports nothing of `colorjax.pretrained`."""
