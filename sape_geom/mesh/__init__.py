"""Triangle meshes (numpy, trimesh, libigl, PyMCubes; no torch): files, sampling and labels, marching cubes,
clean-up, metrics and generated test shapes."""
