"""Backbones: image and patch encoders shared by the methods."""
