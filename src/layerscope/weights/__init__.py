"""Accumulated weight change (study C, Yang and Park 2023): recorded in training, stored, plotted, rendered in 3D."""
