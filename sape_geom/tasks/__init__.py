"""The fitting tasks, each a frozen config, a fit function and its result: occupancy (3D), silhouette
deformation (2D curves), and the 1D/2D regression tasks of the method."""
