"""Model architectures shared by training and inference."""
