"""Radiomics features in batched torch (pyradiomics definitions) and the Fréchet radiomics distance."""
