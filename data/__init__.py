"""Data stages: stage content and style sets, prepare square images with manifests."""
