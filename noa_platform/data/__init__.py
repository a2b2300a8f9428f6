"""CNO datasets: sampling θ and seeds, simulating samples, the HDF5 store, generation."""
