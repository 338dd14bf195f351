"""One readable file per algorithm: IQL critic, diffusion behaviour policy."""
